"""The append-only audit log on a Redis stream."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import redis

from bot.approvals.codec import _EPOCH, _iso, _opt, _pairs, _s
from bot.approvals.errors import StoreUnavailable, _guard
from bot.approvals.models import ApprovalRequest, AuditEntry, AuditEvent, Clock, _utcnow

# The package's logger name, unchanged by the split into modules.
log = logging.getLogger("bot.approvals")

DEFAULT_AUDIT_MAXLEN = 100_000


class AuditLog:
    """Append-only audit log on a Redis stream (``{prefix}:audit``), capped at ~``maxlen`` entries."""

    def __init__(
        self,
        client: redis.Redis[Any],
        *,
        prefix: str = "patbot",
        clock: Clock = _utcnow,
        maxlen: int = DEFAULT_AUDIT_MAXLEN,
    ) -> None:
        self._redis = client
        self.key = f"{prefix}:audit"
        self._clock = clock
        self._maxlen = maxlen

    def append(
        self,
        event: str,
        request: ApprovalRequest,
        actor: str | None = None,
        outcome: str | None = None,
        detail: str | None = None,
        *,
        at: datetime | None = None,
    ) -> str:
        """Append one entry; returns its stream id. Raises :class:`StoreUnavailable`."""
        fields = self._fields(event, request, actor, outcome, detail, at)
        with _guard():
            entry_id = self._redis.xadd(self.key, fields, maxlen=self._maxlen, approximate=True)
        return _s(entry_id)

    def _fields(
        self,
        event: str,
        request: ApprovalRequest,
        actor: str | None,
        outcome: str | None,
        detail: str | None,
        at: datetime | None,
    ) -> dict[str, str]:
        return {
            "event": str(event),
            "time": _iso(at or self._clock()),
            "request_id": request.id,
            "kind": str(request.kind),
            "subject": request.subject,
            "workspace": request.workspace,
            "requester": request.requester,
            "actor": actor or "",
            "outcome": outcome or "",
            "detail": detail or "",
            "reason": request.reason if event == AuditEvent.CREATED else "",
        }

    def entries(self, count: int | None = None) -> list[AuditEntry]:
        """The whole log, or its latest ``count`` entries; oldest first. Raises StoreUnavailable."""
        with _guard():
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

    def append_best_effort(
        self,
        event: str,
        request: ApprovalRequest,
        actor: str | None = None,
        outcome: str | None = None,
        detail: str | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Append, and if Redis fails write the entry to the Python log instead of raising."""
        try:
            self.append(event, request, actor, outcome, detail, at=at)
        except StoreUnavailable:
            fields = self._fields(event, request, actor, outcome, detail, at)
            log.error("audit log unavailable; entry not stored in Redis: %s", json.dumps(fields))
