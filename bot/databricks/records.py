"""Databricks' JSON and SDK records mapped to strict domain records (tokens, posture, token users, OAuth
secrets), once per record of a listing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from bot.governance.migration import OAuthSecret
from bot.governance.models import (
    GranteeKind,
    Posture,
    Token,
    TokenUser,
)

if TYPE_CHECKING:
    from databricks.sdk.service.oauth2 import (
        CreateServicePrincipalSecretResponse,
        SecretInfo,
    )
    from databricks.sdk.service.settings import TokenInfo


UNSET_MAX_LIFETIME_DAYS = 730


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
    if not token_id or created_ms is None or (created_ms := int(created_ms)) <= 0:
        return None
    expiry_ms, used_ms = get("expiry_time"), get("last_used_day")
    owner_id = get("owner_id")
    if owner_id is None:
        owner_id = get("created_by_id")
    state = get("autoscope_state")
    scopes, inferred, backfill = get("scopes"), get("inferred_scopes"), get("backfill_scopes")
    # Positional, in field order (keywords cost a frozen dataclass a tenth more per token).
    return Token(
        token_id,
        workspace,
        get("created_by_username") or "",
        None if owner_id is None else int(owner_id),
        get("comment") or "",
        datetime.fromtimestamp(created_ms / 1000, UTC),
        None
        if expiry_ms is None or (expiry_ms := int(expiry_ms)) <= 0
        else datetime.fromtimestamp(expiry_ms / 1000, UTC),
        None if used_ms is None or (used_ms := int(used_ms)) <= 0 else _day_of_millis(used_ms),
        tuple(scopes) if scopes else (),
        state if isinstance(state, str) and state in AUTOSCOPE_STATES else "",
        tuple(inferred) if inferred else (),
        tuple(backfill) if backfill else (),
    )


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MS_PER_DAY = 86_400_000


def _day_of_millis(ms: int) -> date:
    """The UTC calendar day of an epoch-milliseconds moment: `datetime.fromtimestamp(ms / 1000, UTC).date()`."""
    return date.fromordinal(_EPOCH_ORDINAL + ms // _MS_PER_DAY)


def tokens_from_listing(text: str, workspace: str) -> tuple[list[Token], int]:
    """The tokens of a token-management listing (`{"token_infos": [...]}`), and how many of its records were
    skipped for lacking an ID or a creation time. Raises `ValueError` when `text` is not a JSON object.

    Each record is mapped as soon as the decoder has built it (`object_hook`), so a listing of 100,000 tokens
    never holds all its parsed dicts at once, and the loop over the records runs in C.
    """
    if not text.strip():
        return [], 0

    def mapped(record: dict[str, Any]) -> Any:
        if "token_id" not in record:
            return record  # the listing itself, an object inside a record, or a record without an ID
        token = token_from_dict(record, workspace)
        return record if token is None else token

    listing = json.loads(text, object_hook=mapped)
    if not isinstance(listing, dict):
        raise ValueError("a token listing is a JSON object")
    records = listing.get("token_infos") or []
    if not isinstance(records, list):
        raise ValueError("token_infos is not a list")
    tokens = [r for r in records if isinstance(r, Token)]
    return tokens, len(records) - len(tokens)


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
