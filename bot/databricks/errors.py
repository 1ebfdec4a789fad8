"""What can go wrong talking to Databricks, as domain errors whose messages say what failed and where."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from databricks.sdk import errors as sdk_errors
from databricks.sdk.errors.base import DatabricksError as DatabricksSdkError

from bot.errors import GovernanceError
from bot.governance.migration import OAuthSecret
from bot.governance.models import Token


class DatabricksError(GovernanceError):
    """A Databricks call failed; `workspace` names where."""

    def __init__(self, user_message: str, workspace: str = "") -> None:
        super().__init__(user_message)
        self.workspace = workspace


class WorkspaceForbidden(DatabricksError):
    """patbot's identity may not do this in the workspace (401/403)."""


class DatabricksNotFound(DatabricksError):
    """The object does not exist (404)."""


class DatabricksRateLimited(DatabricksError):
    """Databricks kept answering 429 until the retry budget ran out."""


class WorkspaceUnavailable(DatabricksError):
    """Unreachable, timing out or answering 5xx until the retry budget ran out."""


class DatabricksRejected(DatabricksError):
    """Databricks refused the request as invalid (400), e.g. a quota or a lifetime limit."""


class WriteNotApplied(DatabricksError):
    """A write's answer was lost, and reading the state back showed it was not done."""


class WriteInDoubt(DatabricksError):
    """A write's answer was lost, and reading the state back failed: it may or may not have been done."""


class TokenValueLost(DatabricksError):
    """A token was created but the answer carrying its value was lost; `token` is the one read back."""

    def __init__(self, user_message: str, token: Token, workspace: str = "") -> None:
        super().__init__(user_message, workspace)
        self.token = token


@contextmanager
def translated_errors(workspace: str, action: str) -> Iterator[None]:
    """Turn SDK and transport exceptions raised inside into `DatabricksError`s."""
    try:
        yield
    except DatabricksError:
        raise
    except Exception as exc:
        raise translate_error(exc, workspace, action) from exc


# RFC 6749 error codes, as the SDK's OAuth token request puts them first in its ValueError.
_OAUTH_REFUSALS = (
    "invalid_client:",
    "invalid_grant:",
    "unauthorized_client:",
    "invalid_scope:",
    "access_denied:",
)


def translate_error(exc: BaseException, workspace: str, action: str) -> DatabricksError:
    """Map one SDK failure to a domain error whose message says what failed and where."""
    where = f"{action} in {workspace}"
    cause = exc.__cause__ if isinstance(exc, TimeoutError) and exc.__cause__ is not None else exc
    detail = _sdk_message(cause)
    if isinstance(cause, sdk_errors.PermissionDenied | sdk_errors.Unauthenticated):
        return WorkspaceForbidden(f"{where}: permission denied ({detail})", workspace)
    if isinstance(cause, ValueError) and detail.startswith(_OAUTH_REFUSALS):
        # The SDK's OAuth token request, refused: `invalid_client: Client authentication failed` (no secret).
        return WorkspaceForbidden(
            f"{where}: OAuth sign-in refused ({detail}); check the client ID and secret", workspace
        )
    if isinstance(cause, sdk_errors.NotFound):
        return DatabricksNotFound(f"{where}: not found ({detail})", workspace)
    if isinstance(cause, sdk_errors.TooManyRequests):
        return DatabricksRateLimited(f"{where}: rate limited by Databricks; try again shortly", workspace)
    if getattr(cause, "error_code", None) == "QUOTA_EXCEEDED":
        return DatabricksRejected(
            f"{where}: token quota reached (Databricks allows 600 tokens per user or principal); "
            "revoke unused tokens first",
            workspace,
        )
    if isinstance(cause, sdk_errors.BadRequest):
        return DatabricksRejected(f"{where}: rejected ({detail})", workspace)
    if isinstance(cause, requests.ConnectionError):
        return WorkspaceUnavailable(f"{where}: cannot connect", workspace)
    if isinstance(cause, requests.Timeout) or isinstance(exc, TimeoutError):
        return WorkspaceUnavailable(f"{where}: timed out", workspace)
    if isinstance(cause, DatabricksSdkError):
        return WorkspaceUnavailable(f"{where}: {detail}", workspace)
    return WorkspaceUnavailable(f"{where}: unexpected error ({type(cause).__name__})", workspace)


def _sdk_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class SecretValueLost(DatabricksError):
    """An OAuth secret was created but the answer carrying its value was lost; `secret` is the one read back."""

    def __init__(self, user_message: str, secret: OAuthSecret, workspace: str = "") -> None:
        super().__init__(user_message, workspace)
        self.secret = secret
