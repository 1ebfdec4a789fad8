"""How requests, times and ids are written to Redis and read back: hash fields, µs scores, ids."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.approvals.models import ApprovalRequest, RequestKind, RequestState
from bot.approvals.plans import decode_plan

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 10


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("naive datetime; the approvals store needs timezone-aware times")
    return dt.astimezone(UTC)


def _us(dt: datetime) -> int:
    """Exact integer microseconds since the epoch (no float rounding)."""
    return (_aware(dt) - _EPOCH) // timedelta(microseconds=1)


def _iso(dt: datetime) -> str:
    return _aware(dt).isoformat()


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _pairs(flat: Any) -> dict[str, str]:
    """A Lua HGETALL reply (flat list) or a redis-py dict, as a dict of str."""
    if isinstance(flat, dict):
        return {_s(k): _s(v) for k, v in flat.items()}
    items = list(flat or [])
    return {_s(items[i]): _s(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def _opt(fields: Mapping[str, str], name: str) -> str | None:
    value = fields.get(name)
    return value if value else None


def _opt_dt(fields: Mapping[str, str], name: str) -> datetime | None:
    value = fields.get(name)
    return datetime.fromisoformat(value) if value else None


def _hash_tag(prefix: str) -> str:
    """``{prefix}``: every key of one store carries it, so every key lives in one hash slot."""
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError("the key prefix must be non-empty and contain no braces")
    return f"{{{prefix}}}"


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def _valid_id(request_id: str) -> bool:
    return len(request_id) == _ID_LENGTH and all(c in _ID_ALPHABET for c in request_id)


def _request_from_hash(fields: Mapping[str, str]) -> ApprovalRequest:
    kind = RequestKind(fields["kind"])
    return ApprovalRequest(
        id=fields["id"],
        kind=kind,
        subject=fields["subject"],
        workspace=fields["workspace"],
        requester=fields["requester"],
        reason=fields.get("reason", ""),
        plan=decode_plan(kind, fields.get("plan", "")),
        created_at=datetime.fromisoformat(fields["created_at"]),
        expires_at=datetime.fromisoformat(fields["expires_at"]),
        state=RequestState(fields["state"]),
        decided_by=_opt(fields, "decided_by"),
        decided_at=_opt_dt(fields, "decided_at"),
        outcome=_opt(fields, "outcome"),
        outcome_detail=_opt(fields, "outcome_detail"),
        outcome_at=_opt_dt(fields, "outcome_at"),
        admin_channel=_opt(fields, "admin_channel"),
        admin_ts=_opt(fields, "admin_ts"),
        owner=_opt(fields, "owner"),
        self_service=fields.get("self_service") == "1",
    )
