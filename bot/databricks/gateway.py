"""`WorkspaceGateway`: everything patbot reads and writes in one workspace."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from bot.databricks.clients import ClientFactory, WorkspaceApi
from bot.databricks.errors import (
    DatabricksError,
    DatabricksNotFound,
    DatabricksRejected,
    SecretValueLost,
    TokenValueLost,
    WorkspaceUnavailable,
    WriteInDoubt,
    WriteNotApplied,
    translated_errors,
)
from bot.databricks.records import (
    TOKEN_PERMISSIONS_PATH,
    CreatedSecret,
    CreatedToken,
    posture_from_conf,
    secret_from_dict,
    secret_from_sdk,
    sp_secrets_path,
    token_from_dict,
    token_from_sdk,
    token_users_from_acl,
    tokens_from_listing,
)
from bot.databricks.scim import (
    OWNER_FILTER_BATCH,
    OWNER_FILTER_MAX,
    SCIM_PAGE_REQUEST,
    SP_ATTRIBUTES,
    SPS_PATH,
    USER_ATTRIBUTES,
    USERS_PATH,
    PrincipalPage,
    PrincipalRead,
    principals_from_page,
    scim_string,
)
from bot.databricks.steps import Get, StepRunner, Steps, run_steps
from bot.governance.migration import OAuthSecret
from bot.governance.models import (
    Posture,
    Principal,
    Token,
    TokenAccess,
    TokenUser,
    Workspace,
)
from bot.read_cache import ReadCache
from bot.write_once import (
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

log = logging.getLogger(__name__)


_T = TypeVar("_T")
_POSTURE_KEYS = "enableTokensConfig,maxTokenLifetimeDays"
_SCOPES_MASK = "scopes"  # the `update_mask` of a scopes-only PATCH, as the SDK's FieldMask writes it


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
        return list(self._reads.get("tokens", lambda: self._run(self.list_tokens_steps())))

    # The same reads on an event loop (the fleet audit), shared through the same cache: fifty `/pat audit`s
    # at once read each workspace once, whichever thread or loop asked first.

    async def list_tokens_async(self, run: StepRunner) -> list[Token]:
        """`list_tokens`, its steps run by `run`."""
        return list(await self._reads.get_async("tokens", lambda: run(self.list_tokens_steps())))

    async def token_settings_async(self, run: StepRunner) -> Posture:
        """`token_settings`, its steps run by `run`."""
        return await self._reads.get_async("token-settings", lambda: run(self.token_settings_steps()))

    async def token_users_async(self, run: StepRunner) -> tuple[TokenUser, ...]:
        """`token_users`, its steps run by `run`."""
        return await self._reads.get_async("token-users", lambda: run(self.token_users_steps()))

    async def service_principals_async(
        self, load: Callable[[], Awaitable[list[Principal]]]
    ) -> list[Principal]:
        """`service_principals`, read by `load` (e.g. every page at once; see `service_principal_reads`)."""
        return list(await self._reads.get_async("service_principals", load))

    def _run(self, steps: Steps[_T]) -> _T:
        """Run a read's steps with this workspace's blocking client."""
        return run_steps(steps, lambda: self.client.reads)

    def list_tokens_steps(self) -> Steps[list[Token]]:
        """`list_tokens` as steps (`bot.databricks.steps`), uncached."""
        with translated_errors(self.workspace.label, "listing tokens"):
            text: str = yield Get(TOKENS_PATH, text=True)
            tokens, skipped = tokens_from_listing(text, self.workspace.host)
        if skipped:
            log.warning("skipping %d tokens without id or creation time in %s", skipped, self.workspace.label)
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
        return self._reads.get("token-settings", lambda: self._run(self.token_settings_steps()))

    def token_settings_steps(self) -> Steps[Posture]:
        """`token_settings` as steps, uncached."""
        with translated_errors(self.workspace.label, "reading the token settings"):
            conf = yield Get("/api/2.0/workspace-conf", {"keys": _POSTURE_KEYS})
        return posture_from_conf({str(k): v for k, v in conf.items()} if isinstance(conf, dict) else {})

    def token_users(self) -> tuple[TokenUser, ...]:
        """Who may use tokens: the grants of the token permissions."""
        return self._reads.get("token-users", lambda: self._run(self.token_users_steps()))

    def token_users_steps(self) -> Steps[tuple[TokenUser, ...]]:
        """`token_users` as steps, uncached."""
        # Read raw: the SDK's TokenPermissionLevel knows only CAN_USE and turns the admins' CAN_MANAGE into None.
        with translated_errors(self.workspace.label, "reading who may use tokens"):
            body = yield Get(TOKEN_PERMISSIONS_PATH)
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
        return list(self._reads.get("users", lambda: self._read_all(USERS_PATH)))

    def service_principals(self) -> list[Principal]:
        """SCIM service principals, named by application ID."""
        return list(self._reads.get("service_principals", lambda: self._read_all(SPS_PATH)))

    def service_principal_reads(self) -> list[PrincipalRead]:
        """The SCIM reads that list every service principal (the first page, which names the others)."""
        return [self._page_read(SPS_PATH, 1, first=True)]

    def _read_all(self, path: str) -> list[Principal]:
        found: list[Principal] = []
        pending = [self._page_read(path, 1, first=True)]
        while pending:
            page = self._run(pending.pop(0)())
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
        unique = set(owner_ids)
        paths = [p for p, wanted in ((USERS_PATH, users), (SPS_PATH, service_principals)) if wanted]
        if len(unique) > OWNER_FILTER_MAX:
            return [self._page_read(path, 1, first=True) for path in paths]
        ids = sorted(str(i) for i in unique)
        reads: list[PrincipalRead] = []
        for start in range(0, len(ids), OWNER_FILTER_BATCH):
            batch = " or ".join(f"id eq {scim_string(i)}" for i in ids[start : start + OWNER_FILTER_BATCH])
            reads += [self._filter_read(path, batch) for path in paths]
        if named:
            reads += [
                self._filter_read(USERS_PATH, f"userName eq {scim_string(named)}"),
                self._filter_read(SPS_PATH, f"applicationId eq {scim_string(named)}"),
            ]
        return reads

    def _filter_read(self, path: str, scim_filter: str) -> PrincipalRead:
        def read() -> Steps[PrincipalPage]:
            page = yield from self._scim_get(path, {"filter": scim_filter, "count": SCIM_PAGE_REQUEST})
            return PrincipalPage(principals_from_page(path, page), [])

        return read

    def _page_read(self, path: str, start: int, *, first: bool = False) -> PrincipalRead:
        def read() -> Steps[PrincipalPage]:
            page = yield from self._scim_get(path, {"startIndex": start, "count": SCIM_PAGE_REQUEST})
            found = principals_from_page(path, page)
            more: list[PrincipalRead] = []
            if first and found:
                # Pages hold what the server allows (100 on Databricks); ask for the rest all at once.
                total = int(page.get("totalResults") or 0)
                more = [self._page_read(path, s) for s in range(start + len(found), total + 1, len(found))]
            return PrincipalPage(found, more, complete=True)

        return read

    def _scim_get(self, path: str, query: dict[str, Any]) -> Steps[dict[str, Any]]:
        what = "users" if path == USERS_PATH else "service principals"
        query["attributes"] = USER_ATTRIBUTES if path == USERS_PATH else SP_ATTRIBUTES
        with translated_errors(self.workspace.label, f"listing {what}"):
            page = yield Get(path, query)
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
        return self._run(self.principal_secrets_steps(principal_id))

    def principal_secrets_steps(self, principal_id: str) -> Steps[list[OAuthSecret]]:
        """`list_principal_secrets` as steps, uncached."""
        host, path = self.workspace.host, sp_secrets_path(principal_id)
        query: dict[str, str] = {}
        found: list[OAuthSecret] = []
        with translated_errors(
            self.workspace.label, f"listing the OAuth secrets of principal {principal_id}"
        ):
            while True:  # paged as the SDK's ServicePrincipalSecretsProxyAPI.list: until no next_page_token
                page = yield Get(path, query)
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
