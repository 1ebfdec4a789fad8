"""The one adapter over databricks-sdk: strict domain records in, domain errors out."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bot.sdk_import import defer_sdk_package

defer_sdk_package()  # before the first databricks.sdk import: the client core, not every service

import requests  # noqa: E402
from databricks.sdk import errors as sdk_errors  # noqa: E402
from databricks.sdk.core import ApiClient, Config  # noqa: E402
from databricks.sdk.credentials_provider import CredentialsStrategy  # noqa: E402
from databricks.sdk.errors.base import DatabricksError as DatabricksSdkError  # noqa: E402

from bot.errors import GovernanceError  # noqa: E402
from bot.governance.migration import OAuthSecret  # noqa: E402
from bot.governance.models import (  # noqa: E402
    GranteeKind,
    Posture,
    Principal,
    PrincipalType,
    Token,
    TokenAccess,
    TokenUser,
    Workspace,
)
from bot.read_cache import ReadCache  # noqa: E402
from bot.read_client import Network, ReadClient  # noqa: E402
from bot.write_once import (  # noqa: E402
    TOKENS_PATH,
    AnswerLost,
    ReadBackFailed,
    conf_value,
    find_marked_token,
    read_json,
    secret_stamps,
    send_once,
    token_exists,
)

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.service.oauth2 import (
        CreateServicePrincipalSecretResponse,
        SecretInfo,
        ServicePrincipalSecretsProxyAPI,
    )
    from databricks.sdk.service.settings import TokenInfo, TokenManagementAPI, WorkspaceConfAPI
    from databricks.sdk.service.workspace import SecretsAPI

log = logging.getLogger(__name__)

_T = TypeVar("_T")
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


AUTOSCOPE_STATES = frozenset(
    {
        "AUTOSCOPE_STATE_API_NOT_COVERED",
        "AUTOSCOPE_STATE_BACKFILLED",
        "AUTOSCOPE_STATE_COMPLETED",
        "AUTOSCOPE_STATE_DISABLED",
        "AUTOSCOPE_STATE_RUNNING",
        "AUTOSCOPE_STATE_USER_SELECTED",
    }
)
"""The SDK's `AutoscopeState` values (it reads any other as None); spelled out, since importing the SDK's
`iam` module for them costs a fleet audit 60 ms of start-up. A unit test holds them to the SDK's enum."""


def token_from_dict(d: Mapping[str, Any], workspace: str) -> Token | None:
    """`token_from_sdk(TokenInfo.from_dict(d), workspace)` without building the `TokenInfo`: a listing of
    100,000 tokens maps each record once (inlined: this runs once per token of the fleet)."""
    get = d.get
    token_id = get("token_id")
    created_ms = get("creation_time")
    if not token_id or created_ms is None or int(created_ms) <= 0:
        return None
    expiry_ms, used_ms = get("expiry_time"), get("last_used_day")
    owner_id = get("owner_id")
    if owner_id is None:
        owner_id = get("created_by_id")
    state = get("autoscope_state")
    scopes, inferred, backfill = get("scopes"), get("inferred_scopes"), get("backfill_scopes")
    return Token(
        token_id=token_id,
        workspace=workspace,
        owner=get("created_by_username") or "",
        owner_id=None if owner_id is None else int(owner_id),
        comment=get("comment") or "",
        created=datetime.fromtimestamp(int(created_ms) / 1000, tz=UTC),
        expires=_from_millis(None if expiry_ms is None else int(expiry_ms)),
        last_used=(
            datetime.fromtimestamp(int(used_ms) / 1000, tz=UTC).date()
            if used_ms is not None and int(used_ms) > 0
            else None
        ),
        scopes=tuple(scopes) if scopes else (),
        autoscope_state=state if isinstance(state, str) and state in AUTOSCOPE_STATES else "",
        inferred_scopes=tuple(inferred) if inferred else (),
        backfill_scopes=tuple(backfill) if backfill else (),
    )


_JSON = json.JSONDecoder()
_BLANK = re.compile(r"[ \t\n\r]*")


def json_array_items(text: str, field: str) -> Iterator[Any]:
    """The items of the array `field` of the JSON object in `text`, decoded one at a time.

    The same JSON, parsed once, but a large listing's records can be mapped and released as they come.
    Raises `ValueError` when `text` is not a JSON object.
    """

    def skip(pos: int) -> int:
        return _BLANK.match(text, pos).end()  # type: ignore[union-attr]

    def expect(pos: int, chars: str) -> str:
        if pos >= len(text) or text[pos] not in chars:
            raise ValueError(f"expected one of {chars!r} at {pos}")
        return text[pos]

    pos = skip(0)
    if pos == len(text):
        return
    expect(pos, "{")
    pos = skip(pos + 1)
    if text[pos : pos + 1] == "}":
        return
    while True:
        key, pos = _JSON.raw_decode(text, pos)
        pos = skip(pos)
        expect(pos, ":")
        pos = skip(pos + 1)
        if key == field and text[pos : pos + 1] == "[":
            pos = skip(pos + 1)
            if text[pos : pos + 1] == "]":
                pos += 1
            else:
                decode, blank = _JSON.raw_decode, _BLANK.match
                while True:  # once per record: spelled out, no helper calls
                    item, pos = decode(text, pos)
                    yield item
                    pos = blank(text, pos).end()  # type: ignore[union-attr]
                    after = text[pos : pos + 1]
                    if after == "]":
                        pos += 1
                        break
                    if after != ",":
                        raise ValueError(f"expected one of ',]' at {pos}")
                    pos = blank(text, pos + 1).end()  # type: ignore[union-attr]
        else:
            _, pos = _JSON.raw_decode(text, pos)
        pos = skip(pos)
        if expect(pos, ",}") == "}":
            return
        pos = skip(pos + 1)


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


_SCOPES_MASK = "scopes"  # the `update_mask` of a scopes-only PATCH, as the SDK's FieldMask writes it
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


class SecretValueLost(DatabricksError):
    """An OAuth secret was created but the answer carrying its value was lost; `secret` is the one read back."""

    def __init__(self, user_message: str, secret: OAuthSecret, workspace: str = "") -> None:
        super().__init__(user_message, workspace)
        self.secret = secret


def sp_secrets_path(principal_id: str) -> str:
    """The workspace-level service-principal secrets API of a principal (its numeric SCIM id)."""
    return f"/api/2.0/accounts/servicePrincipals/{principal_id}/credentials/secrets"


def _from_rfc3339(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def secret_from_sdk(
    info: SecretInfo | CreateServicePrincipalSecretResponse, principal_id: str, workspace: str
) -> OAuthSecret | None:
    """Map an all-optional `SecretInfo` to a strict `OAuthSecret`; None without an ID or creation time."""
    created = _from_rfc3339(info.create_time)
    if not info.id or created is None:
        return None
    return OAuthSecret(
        secret_id=info.id,
        principal_id=principal_id,
        workspace=workspace,
        created=created,
        expires=_from_rfc3339(info.expire_time),
        scopes=tuple(info.scopes or ()),
        status=info.status or "",
    )


def secret_from_dict(d: Mapping[str, Any], principal_id: str, workspace: str) -> OAuthSecret | None:
    """`secret_from_sdk(SecretInfo.from_dict(d), …)` without the SDK's record: one secret of a listing."""
    created = _from_rfc3339(d.get("create_time"))
    if not d.get("id") or created is None:
        return None
    return OAuthSecret(
        secret_id=str(d["id"]),
        principal_id=principal_id,
        workspace=workspace,
        created=created,
        expires=_from_rfc3339(d.get("expire_time")),
        scopes=tuple(d.get("scopes") or ()),
        status=str(d.get("status") or ""),
    )


@dataclass(frozen=True, slots=True)
class CreatedSecret:
    """A new OAuth secret's record; the value goes straight to the secret scope and is never logged."""

    secret: OAuthSecret
    value: str

    def __repr__(self) -> str:
        return f"CreatedSecret(secret={self.secret!r}, value='***')"


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A new token's record; the value goes straight to the secret scope and is never logged."""

    token: Token
    value: str

    def __repr__(self) -> str:
        return f"CreatedToken(token={self.token!r}, value='***')"


class WorkspaceApi:
    """One workspace's SDK client core: its `Config`, one `ApiClient` (so one HTTP connection pool, reused
    by every call) and the few service APIs patbot calls, each built on first use.

    It stands where a `WorkspaceClient` would, without building the hundred-odd service objects (and
    importing their modules) that `WorkspaceClient.__init__` creates. The audit's many small reads go
    through `reads` (`bot.read_client`): the same auth, retries and errors over a leaner HTTP path.
    """

    def __init__(self, config: Config, network: Network | None = None) -> None:
        self.config = config
        self._network = network or Network()

    @cached_property
    def api_client(self) -> ApiClient:
        """The SDK's HTTP client of this workspace (the few reads outside the audit)."""
        return ApiClient(self.config)

    @cached_property
    def reads(self) -> ReadClient:
        """The audit's GETs: one keep-alive connection pool to the workspace."""
        config = self.config
        return ReadClient(
            str(config.host),
            config.authenticate,
            user_agent=config.user_agent,
            http_timeout_seconds=float(config.http_timeout_seconds or 60),
            retry_timeout_seconds=float(config.retry_timeout_seconds or 300),
            network=self._network,
        )

    @cached_property
    def token_management(self) -> TokenManagementAPI:
        """`/api/2.0/token-management`."""
        from databricks.sdk.service.settings import TokenManagementAPI

        return TokenManagementAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def workspace_conf(self) -> WorkspaceConfAPI:
        """`/api/2.0/workspace-conf`."""
        from databricks.sdk.service.settings import WorkspaceConfAPI

        return WorkspaceConfAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def secrets(self) -> SecretsAPI:
        """`/api/2.0/secrets`."""
        from databricks.sdk.service.workspace import SecretsAPI

        return SecretsAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def service_principal_secrets_proxy(self) -> ServicePrincipalSecretsProxyAPI:
        """`/api/2.0/accounts/servicePrincipals/{id}/credentials/secrets`: a principal's OAuth secrets."""
        from databricks.sdk.service.oauth2 import ServicePrincipalSecretsProxyAPI

        return ServicePrincipalSecretsProxyAPI(self.api_client)  # type: ignore[no-untyped-call]


# A SCIM filter of 50 `id eq "…"` terms has 99 nodes; Databricks refuses filters of more than 200.
OWNER_FILTER_BATCH = 50
# Past this many distinct owners, reading every principal page (concurrently) takes fewer requests than
# filtering by ID, since a page holds 100 principals and a filter batch only 50 IDs.
OWNER_FILTER_MAX = 1000
SCIM_PAGE_REQUEST = 10000
_USERS_PATH = "/api/2.0/preview/scim/v2/Users"
_SPS_PATH = "/api/2.0/preview/scim/v2/ServicePrincipals"
_USER_ATTRIBUTES = "id,userName,displayName,active"
_SP_ATTRIBUTES = "id,applicationId,displayName,active"


@dataclass(frozen=True, slots=True)
class PrincipalPage:
    """What one SCIM read found, and the reads it showed are still needed (the other pages)."""

    principals: list[Principal]
    more: list[PrincipalRead]
    complete: bool = False  # True when the reads list every principal, not only the ones asked for


PrincipalRead = Callable[[], PrincipalPage]


def scim_string(value: str) -> str:
    """A SCIM filter string literal (JSON string escaping)."""
    return json.dumps(value)


class WorkspaceGateway:
    """Everything patbot does in one workspace, through one client core (`WorkspaceApi`).

    Writes go out exactly once through `bot.write_once` (never the SDK's retrying `ApiClient`); when their
    answer is lost they read the state back and return or raise what actually happened.
    """

    settle_seconds: float = 2.0
    """After a write timed out, wait this long before reading back: the server may still be acting on it."""

    def __init__(self, workspace: Workspace, client_factory: ClientFactory, read_ttl: float = 0.0) -> None:
        self.workspace = workspace
        self._factory = client_factory
        self._client: WorkspaceApi | None = None
        self._lock = threading.Lock()
        self._reads = ReadCache(read_ttl)

    @property
    def client(self) -> WorkspaceApi:
        """The client for reads (retried within the budget), built on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._factory(self.workspace)
            return self._client

    def list_tokens(self) -> list[Token]:
        """Every PAT in the workspace (expired ones included, as the API lists them)."""
        return list(self._reads.get("tokens", self._list_tokens))

    def _list_tokens(self) -> list[Token]:
        tokens = []
        host = self.workspace.host
        with translated_errors(self.workspace.label, "listing tokens"):
            text = self.client.reads.get_bytes(TOKENS_PATH).decode("utf-8")
            # One record decoded and mapped at a time: 100,000 parsed dicts are never all held at once.
            for info in json_array_items(text, "token_infos"):
                token = token_from_dict(info, host)
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

    def revoke(self, token_id: str) -> str:
        """Delete a token with exactly one DELETE; returns "" or, when the answer was lost, what the read-back saw."""
        action, cfg = f"revoking token {token_id[:12]}", self.client.config
        try:
            with translated_errors(self.workspace.label, action):
                try:
                    send_once(cfg, "DELETE", f"{TOKENS_PATH}/{token_id}")
                except AnswerLost as lost:
                    if self._read_back(lost, action, lambda: token_exists(cfg, token_id)):
                        raise self._not_applied(action, lost, "the token still exists") from None
                    return f"{lost.why}; read back: the token is gone"
        finally:
            self._reads.clear()
        return ""

    def posture(self) -> Posture:
        """PATs enabled or not, the maximum token lifetime and who may use tokens (two reads); without who
        may use tokens, and a warning logged, when the token permissions cannot be read (e.g. below the
        Premium plan)."""
        posture = self.token_settings()
        try:
            users = self.token_users()
        except DatabricksError as exc:
            log.warning("who may use tokens in %s: %s", self.workspace.label, exc.user_message)
            return posture
        return replace(posture, token_users=users)

    def token_settings(self) -> Posture:
        """PATs enabled or not and the maximum token lifetime (who may use tokens not read)."""
        return self._reads.get("token-settings", self._token_settings)

    def _token_settings(self) -> Posture:
        with translated_errors(self.workspace.label, "reading the token settings"):
            conf = self.client.reads.get_json("/api/2.0/workspace-conf", {"keys": _POSTURE_KEYS})
        return posture_from_conf({str(k): v for k, v in conf.items()} if isinstance(conf, dict) else {})

    def token_users(self) -> tuple[TokenUser, ...]:
        """Who may use tokens: the grants of the token permissions."""
        return self._reads.get("token-users", self._token_users)

    def _token_users(self) -> tuple[TokenUser, ...]:
        # Read raw: the SDK's TokenPermissionLevel knows only CAN_USE and turns the admins' CAN_MANAGE into None.
        with translated_errors(self.workspace.label, "reading who may use tokens"):
            body = self.client.reads.get_json(TOKEN_PERMISSIONS_PATH)
        return token_users_from_acl(body if isinstance(body, dict) else {})

    def set_max_lifetime(self, days: int) -> str:
        """Set `maxTokenLifetimeDays` (a string value) with exactly one PATCH; returns a note as `revoke`."""
        action, cfg, key = "setting maxTokenLifetimeDays", self.client.config, "maxTokenLifetimeDays"
        try:
            with translated_errors(self.workspace.label, action):
                try:
                    send_once(cfg, "PATCH", "/api/2.0/workspace-conf", body={key: str(days)})
                except AnswerLost as lost:
                    value = self._read_back(lost, action, lambda: conf_value(cfg, key))
                    if value != str(days):
                        raise self._not_applied(action, lost, f"it is still {value or 'unset'}") from None
                    return f"{lost.why}; read back: it is set"
        finally:
            self._reads.clear()
        return ""

    def principals(self) -> list[Principal]:
        """SCIM users and service principals, with whether they are active."""
        return self.users() + self.service_principals()

    def users(self) -> list[Principal]:
        """SCIM users (only the attributes patbot needs)."""
        return list(self._reads.get("users", lambda: self._read_all(_USERS_PATH)))

    def service_principals(self) -> list[Principal]:
        """SCIM service principals, named by application ID."""
        return list(self._reads.get("service_principals", lambda: self._read_all(_SPS_PATH)))

    def _read_all(self, path: str) -> list[Principal]:
        found: list[Principal] = []
        pending = [self._page_read(path, 1, first=True)]
        while pending:
            page = pending.pop(0)()
            found.extend(page.principals)
            pending.extend(page.more)
        return found

    def owner_reads(
        self,
        owner_ids: Collection[int],
        named: str | None = None,
        *,
        users: bool = True,
        service_principals: bool = True,
    ) -> list[PrincipalRead]:
        """The SCIM reads that find the principals behind these SCIM IDs, to run concurrently.

        Few owners: batched `id eq` filters on users and on service principals (an ID names one or the
        other). Many: every page of both lists, the first page telling how many more there are. `named`
        also looks up one user name or application ID (to tell an owner without tokens from a stranger).
        `users=False` or `service_principals=False` leaves that list out (its principals are read apart,
        e.g. every service principal for their OAuth secrets).
        """
        ids = sorted({str(i) for i in owner_ids})
        paths = [p for p, wanted in ((_USERS_PATH, users), (_SPS_PATH, service_principals)) if wanted]
        if len(ids) > OWNER_FILTER_MAX:
            return [self._page_read(path, 1, first=True) for path in paths]
        reads: list[PrincipalRead] = []
        for start in range(0, len(ids), OWNER_FILTER_BATCH):
            batch = " or ".join(f"id eq {scim_string(i)}" for i in ids[start : start + OWNER_FILTER_BATCH])
            reads += [self._filter_read(path, batch) for path in paths]
        if named:
            reads += [
                self._filter_read(_USERS_PATH, f"userName eq {scim_string(named)}"),
                self._filter_read(_SPS_PATH, f"applicationId eq {scim_string(named)}"),
            ]
        return reads

    def _filter_read(self, path: str, scim_filter: str) -> PrincipalRead:
        def read() -> PrincipalPage:
            page = self._scim_get(path, {"filter": scim_filter, "count": SCIM_PAGE_REQUEST})
            return PrincipalPage(_principals(path, page), [])

        return read

    def _page_read(self, path: str, start: int, *, first: bool = False) -> PrincipalRead:
        def read() -> PrincipalPage:
            page = self._scim_get(path, {"startIndex": start, "count": SCIM_PAGE_REQUEST})
            found = _principals(path, page)
            more: list[PrincipalRead] = []
            if first and found:
                # Pages hold what the server allows (100 on Databricks); ask for the rest all at once.
                total = int(page.get("totalResults") or 0)
                more = [self._page_read(path, s) for s in range(start + len(found), total + 1, len(found))]
            return PrincipalPage(found, more, complete=True)

        return read

    def _scim_get(self, path: str, query: dict[str, Any]) -> dict[str, Any]:
        what = "users" if path == _USERS_PATH else "service principals"
        query["attributes"] = _USER_ATTRIBUTES if path == _USERS_PATH else _SP_ATTRIBUTES
        with translated_errors(self.workspace.label, f"listing {what}"):
            page = self.client.reads.get_json(path, query)
        return page if isinstance(page, dict) else {}

    def create_obo_token(
        self,
        application_id: str,
        lifetime: timedelta,
        comment: str,
        marker: str,
        access: TokenAccess | None = None,
    ) -> CreatedToken:
        """A token on behalf of a service principal, with exactly one POST; its value is returned once.

        `access` carries its API scopes (none: full access) and autoscope (None: Databricks' default).
        `marker` must be part of `comment`: when the answer is lost it finds the token again. Raises
        `WriteNotApplied` (no token), `TokenValueLost` (a token, whose value is gone) or `WriteInDoubt`.
        """
        if marker not in comment:
            raise ValueError("the comment must carry the marker")
        action, cfg, label = "creating a token", self.client.config, self.workspace.label
        body = {
            "application_id": application_id,
            "lifetime_seconds": int(lifetime.total_seconds()),
            "comment": comment,
        }
        if access is not None and access.scopes:
            body["scopes"] = list(access.scopes)
        if access is not None and access.autoscope is not None:
            body["autoscope_enabled"] = access.autoscope
        try:
            with translated_errors(label, action):
                try:
                    answer = send_once(
                        cfg, "POST", "/api/2.0/token-management/on-behalf-of/tokens", body=body
                    )
                except AnswerLost as lost:
                    found = self._read_back(lost, action, lambda: find_marked_token(cfg, marker))
                    if found is None:
                        raise self._not_applied(action, lost, "no token was created") from None
                    token = token_from_dict(found, self.workspace.host)
                    if token is None:
                        raise WriteInDoubt(
                            f"{action} in {label}: {lost.why}; read back an unreadable token", label
                        ) from None
                    raise TokenValueLost(
                        f"{action} in {label}: {lost.why}; read back: token {token.token_id[:12]} WAS created, "
                        "but its value was lost with the answer",
                        token,
                        label,
                    ) from None
        finally:
            self._reads.clear()
        from databricks.sdk.service.settings import CreateOboTokenResponse

        resp = CreateOboTokenResponse.from_dict(answer)
        token = token_from_sdk(resp.token_info, self.workspace.host) if resp.token_info else None
        if token is None or not resp.token_value:
            raise DatabricksRejected(f"creating a token in {label}: incomplete answer")
        return CreatedToken(token=token, value=resp.token_value)

    def update_scopes(self, token_id: str, scopes: Sequence[str]) -> Token | None:
        """Change a token's API scopes in place: exactly one PATCH (`update_mask=scopes`), never resent.

        Returns the token as Databricks answers (or as read back after a lost answer), None when the answer
        does not describe it. Raises `WriteNotApplied` or `WriteInDoubt` when the answer was lost.
        """
        if not scopes:
            raise DatabricksRejected(f"changing the scopes of token {token_id[:12]}: no scopes given")
        action, cfg = f"changing the scopes of token {token_id[:12]}", self.client.config
        body = {"token": {"token_id": token_id, "scopes": list(scopes)}, "update_mask": _SCOPES_MASK}
        try:
            with translated_errors(self.workspace.label, action):
                try:
                    answer = send_once(cfg, "PATCH", f"{TOKENS_PATH}/{token_id}", body=body)
                except AnswerLost as lost:
                    seen = self._read_back(lost, action, lambda: read_json(cfg, f"{TOKENS_PATH}/{token_id}"))
                    info = seen.get("token_info", seen)
                    if sorted(info.get("scopes") or []) != sorted(scopes):
                        raise self._not_applied(action, lost, "the scopes are unchanged") from None
                    answer = info
        finally:
            self._reads.clear()
        info = answer.get("token_info", answer) if isinstance(answer, dict) else {}
        return token_from_dict(info, self.workspace.host) if info else None

    # --------------------------------------------------------------- service-principal OAuth secrets

    def list_principal_secrets(self, principal_id: str) -> list[OAuthSecret]:
        """The OAuth secrets of a service principal (by numeric SCIM id) made in this workspace; no values."""
        return list(self._reads.get(f"sp-secrets:{principal_id}", lambda: self._list_secrets(principal_id)))

    def _list_secrets(self, principal_id: str) -> list[OAuthSecret]:
        host, path = self.workspace.host, sp_secrets_path(principal_id)
        query: dict[str, str] = {}
        found: list[OAuthSecret] = []
        with translated_errors(
            self.workspace.label, f"listing the OAuth secrets of principal {principal_id}"
        ):
            while True:  # paged as the SDK's ServicePrincipalSecretsProxyAPI.list: until no next_page_token
                page = self.client.reads.get_json(path, query)
                for item in page.get("secrets") or []:
                    secret = secret_from_dict(item, principal_id, host)
                    if secret is not None:
                        found.append(secret)
                if not page.get("next_page_token"):
                    return found
                query = {"page_token": page["next_page_token"]}

    def create_principal_secret(
        self, principal_id: str, lifetime: timedelta, scopes: Sequence[str]
    ) -> CreatedSecret:
        """An OAuth secret for a service principal with exactly one POST; its value is returned once.

        `scopes` empty means unrestricted. The secrets present before are listed first: when the answer is
        lost, a secret that was not there before is the one this call made. Raises `WriteNotApplied` (no
        secret), `SecretValueLost` (a secret, whose value is gone) or `WriteInDoubt`.
        """
        action, cfg, label = "creating an OAuth secret", self.client.config, self.workspace.label
        before = {s.secret_id for s in self._list_secrets(principal_id)}
        body: dict[str, Any] = {"lifetime": f"{int(lifetime.total_seconds())}s"}
        if scopes:
            body["scopes"] = list(scopes)
        path = sp_secrets_path(principal_id)
        try:
            with translated_errors(label, action):
                try:
                    answer = send_once(cfg, "POST", path, body=body)
                except AnswerLost as lost:
                    listed = self._read_back(
                        lost, action, lambda: read_json(cfg, path, query={"page_size": "100"})
                    )
                    new = [
                        s
                        for s in (
                            secret_from_dict(item, principal_id, self.workspace.host)
                            for item in listed.get("secrets") or []
                        )
                        if s is not None and s.secret_id not in before
                    ]
                    if not new:
                        raise self._not_applied(action, lost, "no OAuth secret was created") from None
                    made = max(new, key=lambda s: s.created)
                    raise SecretValueLost(
                        f"{action} in {label}: {lost.why}; read back: OAuth secret {made.short_id} WAS created, "
                        "but its value was lost with the answer",
                        made,
                        label,
                    ) from None
        finally:
            self._reads.clear()
        from databricks.sdk.service.oauth2 import CreateServicePrincipalSecretResponse

        resp = CreateServicePrincipalSecretResponse.from_dict(answer)
        secret = secret_from_sdk(resp, principal_id, self.workspace.host)
        if secret is None or not resp.secret:
            raise DatabricksRejected(f"{action} in {label}: incomplete answer")
        return CreatedSecret(secret=secret, value=resp.secret)

    def delete_principal_secret(self, principal_id: str, secret_id: str) -> str:
        """Delete an OAuth secret with exactly one DELETE; returns a note as `revoke`."""
        action, cfg = f"deleting OAuth secret {secret_id[:12]}", self.client.config
        path = sp_secrets_path(principal_id)

        def still_there() -> bool:
            listed = read_json(cfg, path, query={"page_size": "100"})
            return any(item.get("id") == secret_id for item in listed.get("secrets") or [])

        try:
            with translated_errors(self.workspace.label, action):
                try:
                    send_once(cfg, "DELETE", f"{path}/{secret_id}")
                except AnswerLost as lost:
                    if self._read_back(lost, action, still_there):
                        raise self._not_applied(action, lost, "the secret still exists") from None
                    return f"{lost.why}; read back: the secret is gone"
        finally:
            self._reads.clear()
        return ""

    def secret_stamps(self, scope: str) -> dict[str, int]:
        """The keys of a secret scope with when each was last written (epoch ms); never the values."""
        with translated_errors(self.workspace.label, f"listing secret scope {scope}"):
            try:
                return secret_stamps(self.client.config, scope)
            except ReadBackFailed as exc:
                raise WorkspaceUnavailable(f"listing secret scope {scope}: {exc.why}") from None

    def put_secret(self, scope: str, key: str, value: str, *, stamp_before: int | None) -> str:
        """Write a secret value with exactly one POST; returns a note as `revoke`.

        `stamp_before` is the key's `last_updated_timestamp` before (None: absent): a changed stamp after a
        lost answer means the value arrived.
        """
        action, cfg = f"writing secret {scope}/{key}", self.client.config
        with translated_errors(self.workspace.label, action):
            try:
                send_once(
                    cfg,
                    "POST",
                    "/api/2.0/secrets/put",
                    body={"scope": scope, "key": key, "string_value": value},
                )
            except AnswerLost as lost:
                stamp = self._read_back(lost, action, lambda: secret_stamps(cfg, scope).get(key))
                if stamp is None or stamp == stamp_before:
                    raise self._not_applied(action, lost, "the secret was not written") from None
                return f"{lost.why}; read back: the secret was written"
        return ""

    def _read_back(self, lost: AnswerLost, action: str, look: Callable[[], _T]) -> _T:
        """What a write whose answer was lost did, or `WriteInDoubt` when that cannot be read."""
        if lost.timed_out:
            time.sleep(self.settle_seconds)
        try:
            return look()
        except ReadBackFailed as exc:
            raise WriteInDoubt(
                f"{action} in {self.workspace.label}: {lost.why}, and reading back what happened failed "
                f"({exc.why}): it may or may not have been done",
                self.workspace.label,
            ) from None

    def _not_applied(self, action: str, lost: AnswerLost, seen: str) -> WriteNotApplied:
        return WriteNotApplied(
            f"{action} in {self.workspace.label}: {lost.why}; read back: {seen}", self.workspace.label
        )


def _principals(path: str, page: dict[str, Any]) -> list[Principal]:
    """SCIM resources as principals: users named by userName, service principals by applicationId."""
    user = path == _USERS_PATH
    name_key = "userName" if user else "applicationId"
    kind = PrincipalType.USER if user else PrincipalType.SERVICE_PRINCIPAL
    return [
        Principal(
            id=str(r["id"]),
            name=str(r.get(name_key) or ""),
            display_name=str(r.get("displayName") or r.get(name_key) or ""),
            type=kind,
            active=r.get("active") is not False,
        )
        for r in page.get("Resources") or []
        if isinstance(r, dict) and r.get("id")
    ]


class ClientFactory(Protocol):
    """Builds the client core of a workspace (writes only use its `config`, see `bot.write_once`)."""

    def __call__(self, workspace: Workspace) -> WorkspaceApi: ...


class _BearerToken(CredentialsStrategy):
    """PAT authentication that needs no host: the same `Authorization` header for every workspace."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_type(self) -> str:
        return "pat"

    def __call__(self, cfg: Config) -> Callable[[], dict[str, str]]:
        header = {"Authorization": f"Bearer {self._token}"}
        return lambda: dict(header)

    def __repr__(self) -> str:
        return "_BearerToken(***)"


def workspace_client_factory(
    *,
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    retry_timeout_seconds: int = 10,
    network: Network | None = None,
) -> ClientFactory:
    """Build workspace clients with the same credentials and a bounded retry budget.

    With a PAT, the configuration is resolved once (no host, so no `/.well-known/databricks-config`
    probe) and each workspace gets a deep copy naming its host (a shallow `copy()` shares the
    attributes, host included): building a client costs no request. With
    OAuth M2M or the SDK's unified auth (environment, profiles, cloud CLIs), each workspace resolves its
    own `Config`, which probes the host once (one retry budget when the host is down). `network` is the
    proxy and CA environment of the audit's reads (default: read from the environment now, once).
    """
    environment = network or Network.from_environment()
    http_timeout = min(5, retry_timeout_seconds)
    templates: dict[int, Config] = {}
    lock = threading.Lock()

    def pat_config(budget: int) -> Config:
        assert token is not None
        with lock:
            if budget not in templates:
                templates[budget] = Config(
                    credentials_strategy=_BearerToken(token),
                    retry_timeout_seconds=budget,
                    http_timeout_seconds=http_timeout,
                )
            copied: Config = templates[budget].deep_copy()  # type: ignore[no-untyped-call]
            return copied

    def build(workspace: Workspace) -> WorkspaceApi:
        budget = retry_timeout_seconds
        with translated_errors(workspace.label, "connecting"):
            if token:
                config = pat_config(budget)
                config.host = workspace.host
                return WorkspaceApi(config, environment)
            kwargs: dict[str, Any] = {
                "host": workspace.host,
                "retry_timeout_seconds": budget,
                "http_timeout_seconds": http_timeout,
            }
            if client_id and client_secret:
                kwargs["client_id"] = client_id
                kwargs["client_secret"] = client_secret
            return WorkspaceApi(Config(**kwargs), environment)

    return build


HostResolver = Callable[[str], str]


def discover_account_workspaces(
    account: AccountClient, resolve_host: HostResolver | None = None
) -> list[Workspace]:
    """Every RUNNING workspace of the account; `resolve_host(deployment_name)` gives its URL."""
    from databricks.sdk.service.provisioning import WorkspaceStatus

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
