"""The append-only audit log on a Redis stream, read side: the store's scripts append to it in the
same atomic step as the transition they record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis

from bot.approvals.codec import _EPOCH, _hash_tag, _opt, _pairs, _s
from bot.approvals.errors import _redis_errors
from bot.approvals.models import AuditEntry

DEFAULT_AUDIT_MAXLEN = 100_000


class AuditLog:
    """The audit stream ``{<prefix>}:audit``, capped at ~``maxlen`` entries (trimmed on every append)."""

    def __init__(
        self,
        client: redis.Redis[Any],
        *,
        prefix: str = "patbot",
        maxlen: int = DEFAULT_AUDIT_MAXLEN,
    ) -> None:
        if maxlen <= 0:
            raise ValueError("the audit log's maxlen must be positive")
        self._redis = client
        self.key = f"{_hash_tag(prefix)}:audit"
        self.maxlen = maxlen

    def entries(self, count: int | None = None) -> list[AuditEntry]:
        """The whole log, or its latest ``count`` entries; oldest first. Raises StoreUnavailable."""
        with _redis_errors():
            if count is None:
                raw = self._redis.xrange(self.key)
            else:
                raw = list(reversed(self._redis.xrevrange(self.key, count=count)))
        return [self._entry(_s(entry_id), _pairs(values)) for entry_id, values in raw]

    @staticmethod
    def _entry(entry_id: str, f: dict[str, str]) -> AuditEntry:
        known = {"event", "time", "request_id", "kind", "subject", "workspace", "requester"}
        known |= {"actor", "outcome", "detail", "reason"}
        return AuditEntry(
            id=entry_id,
            event=f.get("event", ""),
            time=datetime.fromisoformat(f["time"]) if f.get("time") else _EPOCH,
            request_id=f.get("request_id", ""),
            kind=f.get("kind", ""),
            subject=f.get("subject", ""),
            workspace=f.get("workspace", ""),
            requester=f.get("requester", ""),
            actor=_opt(f, "actor"),
            outcome=_opt(f, "outcome"),
            detail=_opt(f, "detail"),
            reason=_opt(f, "reason"),
            extra={k: v for k, v in f.items() if k not in known},
        )
