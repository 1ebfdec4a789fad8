"""The one adapter over databricks-sdk: strict domain records in, domain errors out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests
from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.config import Config
from databricks.sdk.errors.base import DatabricksError as DatabricksSdkError
from databricks.sdk.service.provisioning import WorkspaceStatus
from databricks.sdk.service.settings import TokenInfo

from bot.errors import GovernanceError
from bot.governance.models import (
    GranteeKind,
    Posture,
    Principal,
    PrincipalType,
    Token,
    TokenUser,
    Workspace,
)
from bot.read_cache import ReadCache

log = logging.getLogger(__name__)

UNSET_MAX_LIFETIME_DAYS = 730
_POSTURE_KEYS = "enableTokensConfig,maxTokenLifetimeDays"


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


@contextmanager
def translated_errors(workspace: str, action: str) -> Iterator[None]:
    """Turn SDK and transport exceptions raised inside into `DatabricksError`s."""
    try:
        yield
    except DatabricksError:
        raise
    except Exception as exc:
        raise translate_error(exc, workspace, action) from exc


def translate_error(exc: BaseException, workspace: str, action: str) -> DatabricksError:
    """Map one SDK failure to a domain error whose message says what failed and where."""
    where = f"{action} in {workspace}"
    cause = exc.__cause__ if isinstance(exc, TimeoutError) and exc.__cause__ is not None else exc
    detail = _sdk_message(cause)
    if isinstance(cause, sdk_errors.PermissionDenied | sdk_errors.Unauthenticated):
        return WorkspaceForbidden(f"{where}: permission denied ({detail})", workspace)
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


def _from_millis(value: int | None) -> datetime | None:
    if value is None or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def token_from_sdk(info: TokenInfo, workspace: str) -> Token | None:
    """Map the all-optional `TokenInfo` to a strict `Token`; None when it lacks an ID or creation time."""
    created = _from_millis(info.creation_time)
    if not info.token_id or created is None:
        return None
    last_used = _from_millis(info.last_used_day)
    return Token(
        token_id=info.token_id,
        workspace=workspace,
        owner=info.created_by_username or "",
        owner_id=info.owner_id if info.owner_id is not None else info.created_by_id,
        comment=info.comment or "",
        created=created,
        expires=_from_millis(info.expiry_time),
        last_used=last_used.date() if last_used is not None else None,
        scopes=tuple(info.scopes or ()),
        autoscope_state=info.autoscope_state.value if info.autoscope_state is not None else "",
        inferred_scopes=tuple(info.inferred_scopes or ()),
        backfill_scopes=tuple(info.backfill_scopes or ()),
    )


def posture_from_conf(conf: dict[str, str | None]) -> Posture:
    """Read `enableTokensConfig` / `maxTokenLifetimeDays` (string values; unset max means 730)."""
    enabled = str(conf.get("enableTokensConfig") or "true").strip().lower() != "false"
    raw_max = conf.get("maxTokenLifetimeDays")
    try:
        max_days = int(str(raw_max).strip()) if raw_max not in (None, "") else 0
    except ValueError:
        max_days = 0
    return Posture(
        tokens_enabled=enabled,
        max_token_lifetime_days=max_days if max_days > 0 else UNSET_MAX_LIFETIME_DAYS,
        max_lifetime_set=max_days > 0,
    )


_SCOPES_MASK = FieldMask(["scopes"])  # type: ignore[no-untyped-call]  # the SDK's class is untyped
TOKEN_PERMISSIONS_PATH = "/api/2.0/permissions/authorization/tokens"
_LEVEL_RANK = {"CAN_USE": 1, "CAN_MANAGE": 2}
_GRANTEE_FIELDS = (
    ("group_name", GranteeKind.GROUP),
    ("user_name", GranteeKind.USER),
    ("service_principal_name", GranteeKind.SERVICE_PRINCIPAL),
)


def token_users_from_acl(body: Mapping[str, Any]) -> tuple[TokenUser, ...]:
    """Who holds `CAN_USE` (or `CAN_MANAGE`) on tokens, from the token permissions JSON; groups first."""
    users: list[TokenUser] = []
    for entry in body.get("access_control_list") or []:
        if not isinstance(entry, dict):
            continue
        levels = [
            str(p.get("permission_level") or "")
            for p in entry.get("all_permissions") or []
            if isinstance(p, dict)
        ]
        level = max((lv for lv in levels if lv in _LEVEL_RANK), key=_LEVEL_RANK.__getitem__, default=None)
        kind_name = next(((k, entry[f]) for f, k in _GRANTEE_FIELDS if entry.get(f)), None)
        if level is None or kind_name is None:
            continue
        kind, name = kind_name
        users.append(TokenUser(kind, str(name), level, str(entry.get("display_name") or "")))
    order = {k: n for n, (_, k) in enumerate(_GRANTEE_FIELDS)}
    return tuple(sorted(users, key=lambda u: (order[u.kind], u.name.lower())))


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A new token's record; the value goes straight to the secret scope and is never logged."""

    token: Token
    value: str

    def __repr__(self) -> str:
        return f"CreatedToken(token={self.token!r}, value='***')"


class WorkspaceGateway:
    """Everything patbot does in one workspace, through one `WorkspaceClient`."""

    def __init__(self, workspace: Workspace, client_factory: ClientFactory, read_ttl: float = 0.0) -> None:
        self.workspace = workspace
        self._factory = client_factory
        self._client: WorkspaceClient | None = None
        self._write_client: WorkspaceClient | None = None
        self._lock = threading.Lock()
        self._reads = ReadCache(read_ttl)

    @property
    def client(self) -> WorkspaceClient:
        """The SDK client for reads (retried within the budget), built on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._factory(self.workspace)
            return self._client

    @property
    def write_client(self) -> WorkspaceClient:
        """The SDK client for changes: one attempt only, since a retried DELETE or create acts twice."""
        with self._lock:
            if self._write_client is None:
                self._write_client = self._factory(self.workspace, single_attempt=True)
            return self._write_client

    def list_tokens(self) -> list[Token]:
        """Every PAT in the workspace (expired ones included, as the API lists them)."""
        return list(self._reads.get("tokens", self._list_tokens))

    def _list_tokens(self) -> list[Token]:
        with translated_errors(self.workspace.label, "listing tokens"):
            infos = list(self.client.token_management.list())
        tokens = []
        for info in infos:
            token = token_from_sdk(info, self.workspace.host)
            if token is None:
                log.warning("skipping a token without id or creation time in %s", self.workspace.label)
                continue
            tokens.append(token)
        return tokens

    def get_token(self, token_id: str) -> Token:
        """One token by its full ID."""
        with translated_errors(self.workspace.label, f"reading token {token_id[:12]}"):
            info = self.client.token_management.get(token_id).token_info
        token = token_from_sdk(info, self.workspace.host) if info is not None else None
        if token is None:
            raise DatabricksNotFound(f"token {token_id[:12]} not found in {self.workspace.label}")
        return token

    def revoke(self, token_id: str) -> None:
        """Delete a token. Exactly one DELETE: callers guarantee it is not repeated."""
        try:
            with translated_errors(self.workspace.label, f"revoking token {token_id[:12]}"):
                self.write_client.token_management.delete(token_id)
        finally:
            self._reads.clear()

    def posture(self) -> Posture:
        """PATs enabled or not and the maximum token lifetime."""
        return self._reads.get("posture", self._posture)

    def _posture(self) -> Posture:
        with translated_errors(self.workspace.label, "reading the token settings"):
            conf = self.client.workspace_conf.get_status(_POSTURE_KEYS)
        posture = posture_from_conf(dict(conf or {}))
        try:
            users = self._token_users()
        except DatabricksError as exc:  # e.g. no token permissions below the Premium plan
            log.warning("who may use tokens in %s: %s", self.workspace.label, exc.user_message)
            return posture
        return replace(posture, token_users=users)

    def _token_users(self) -> tuple[TokenUser, ...]:
        # Read raw: the SDK's TokenPermissionLevel knows only CAN_USE and turns the admins' CAN_MANAGE into None.
        with translated_errors(self.workspace.label, "reading who may use tokens"):
            body = self.client.api_client.do("GET", TOKEN_PERMISSIONS_PATH)
        return token_users_from_acl(body if isinstance(body, dict) else {})

    def set_max_lifetime(self, days: int) -> None:
        """Set `maxTokenLifetimeDays` (a string value, as the API wants)."""
        try:
            with translated_errors(self.workspace.label, "setting maxTokenLifetimeDays"):
                self.write_client.workspace_conf.set_status({"maxTokenLifetimeDays": str(days)})
        finally:
            self._reads.clear()

    def principals(self) -> list[Principal]:
        """SCIM users and service principals, with whether they are active."""
        return self.users() + self.service_principals()

    def users(self) -> list[Principal]:
        """SCIM users (only the attributes patbot needs)."""
        return list(self._reads.get("users", self._users))

    def _users(self) -> list[Principal]:
        resources = self._scim("/api/2.0/preview/scim/v2/Users", "id,userName,displayName,active", "users")
        return [
            Principal(
                id=str(r["id"]),
                name=str(r.get("userName") or ""),
                display_name=str(r.get("displayName") or r.get("userName") or ""),
                type=PrincipalType.USER,
                active=r.get("active") is not False,
            )
            for r in resources
            if r.get("id")
        ]

    def service_principals(self) -> list[Principal]:
        """SCIM service principals, named by application ID."""
        return list(self._reads.get("service_principals", self._service_principals))

    def _service_principals(self) -> list[Principal]:
        resources = self._scim(
            "/api/2.0/preview/scim/v2/ServicePrincipals",
            "id,applicationId,displayName,active",
            "service principals",
        )
        return [
            Principal(
                id=str(r["id"]),
                name=str(r.get("applicationId") or ""),
                display_name=str(r.get("displayName") or r.get("applicationId") or ""),
                type=PrincipalType.SERVICE_PRINCIPAL,
                active=r.get("active") is not False,
            )
            for r in resources
            if r.get("id")
        ]

    def _scim(self, path: str, attributes: str, what: str) -> list[dict[str, Any]]:
        """Page a SCIM list through the SDK's API client, stopping at `totalResults`.

        The SDK's own iterators always fetch one more, empty page to learn that they are done.
        """
        resources: list[dict[str, Any]] = []
        start = 1
        with translated_errors(self.workspace.label, f"listing {what}"):
            while True:
                page = self.client.api_client.do(
                    "GET", path, query={"attributes": attributes, "startIndex": start, "count": 10000}
                )
                assert isinstance(page, dict)
                batch = page.get("Resources") or []
                resources.extend(batch)
                total = int(page.get("totalResults") or 0)
                if not batch or len(resources) >= total:
                    return resources
                start += len(batch)

    def create_obo_token(
        self,
        application_id: str,
        lifetime: timedelta,
        comment: str,
        scopes: Sequence[str] = (),
        autoscope: bool | None = None,
    ) -> CreatedToken:
        """A token on behalf of a service principal; its value is returned once, for the secret scope.

        `scopes` empty sends none (full access); `autoscope` None leaves Databricks' default.
        """
        with translated_errors(self.workspace.label, "creating a token"):
            resp = self.write_client.token_management.create_obo_token(
                application_id=application_id,
                lifetime_seconds=int(lifetime.total_seconds()),
                comment=comment,
                scopes=list(scopes) or None,
                autoscope_enabled=autoscope,
            )
        self._reads.clear()
        token = token_from_sdk(resp.token_info, self.workspace.host) if resp.token_info else None
        if token is None or not resp.token_value:
            raise DatabricksRejected(f"creating a token in {self.workspace.label}: incomplete answer")
        return CreatedToken(token=token, value=resp.token_value)

    def update_scopes(self, token_id: str, scopes: Sequence[str]) -> Token | None:
        """Change a token's API scopes in place: exactly one PATCH (`update_mask=scopes`), never retried.

        Returns the token as Databricks answers, or None when the answer does not describe it.
        """
        if not scopes:
            raise DatabricksRejected(f"changing the scopes of token {token_id[:12]}: no scopes given")
        try:
            with translated_errors(self.workspace.label, f"changing the scopes of token {token_id[:12]}"):
                info = self.write_client.token_management.update_token_management(
                    token_id, TokenInfo(token_id=token_id, scopes=list(scopes)), _SCOPES_MASK
                )
        finally:
            self._reads.clear()
        return token_from_sdk(info, self.workspace.host)

    def put_secret(self, scope: str, key: str, value: str) -> None:
        """Write a secret value into a Databricks secret scope."""
        with translated_errors(self.workspace.label, f"writing secret {scope}/{key}"):
            self.write_client.secrets.put_secret(scope=scope, key=key, string_value=value)


class ClientFactory(Protocol):
    """Builds the SDK client of a workspace; `single_attempt` for calls that must never be repeated."""

    def __call__(self, workspace: Workspace, *, single_attempt: bool = False) -> WorkspaceClient: ...


# The SDK's retry loop sleeps at least one second before a second attempt and stops once the budget
# is spent, so a one-second budget means exactly one attempt.
SINGLE_ATTEMPT_BUDGET_SECONDS = 1


def workspace_client_factory(
    *,
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    retry_timeout_seconds: int = 10,
) -> ClientFactory:
    """Build `WorkspaceClient`s with the same credentials and a bounded retry budget.

    With no explicit credentials the SDK's unified auth (environment, profiles, cloud CLIs) applies.
    The SDK probes `/.well-known/databricks-config` while building a client and spends one retry budget
    there when the host is down, then another on the first call: an unreachable workspace therefore
    fails after about twice the budget plus one HTTP timeout.
    """

    def build(workspace: Workspace, *, single_attempt: bool = False) -> WorkspaceClient:
        budget = SINGLE_ATTEMPT_BUDGET_SECONDS if single_attempt else retry_timeout_seconds
        kwargs: dict[str, Any] = {
            "host": workspace.host,
            "retry_timeout_seconds": budget,
            "http_timeout_seconds": min(5, retry_timeout_seconds),
        }
        if token:
            kwargs["token"] = token
        elif client_id and client_secret:
            kwargs["client_id"] = client_id
            kwargs["client_secret"] = client_secret
        with translated_errors(workspace.label, "connecting"):
            return WorkspaceClient(config=Config(**kwargs))

    return build


HostResolver = Callable[[str], str]


def discover_account_workspaces(
    account: AccountClient, resolve_host: HostResolver | None = None
) -> list[Workspace]:
    """Every RUNNING workspace of the account; `resolve_host(deployment_name)` gives its URL."""
    resolver = resolve_host or account.config.environment.deployment_url
    label = f"account {account.config.account_id}"
    with translated_errors(label, "listing workspaces"):
        listed = list(account.workspaces.list())
    out = []
    for ws in listed:
        if ws.workspace_status is not None and ws.workspace_status != WorkspaceStatus.RUNNING:
            log.info("skipping workspace %s: %s", ws.workspace_name, ws.workspace_status.value)
            continue
        if not ws.deployment_name:
            continue
        out.append(
            Workspace(
                host=resolver(ws.deployment_name).rstrip("/"),
                workspace_id=ws.workspace_id,
                name=ws.workspace_name or ws.deployment_name,
            )
        )
    return out
