"""The approval store: requests in Redis, moved through the state machine by atomic Lua scripts."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import redis

from bot.approvals.audit_log import AuditLog
from bot.approvals.codec import _aware, _iso, _new_id, _pairs, _request_from_hash, _s, _us, _valid_id
from bot.approvals.errors import (
    _UNAVAILABLE_ERRORS,
    AlreadyDecided,
    DuplicateRequest,
    InvalidTransition,
    RequestExpired,
    RequestNotFound,
    StoreUnavailable,
    _guard,
)
from bot.approvals.models import (
    DECISIONS,
    ApprovalRequest,
    AuditEvent,
    Clock,
    RequestDraft,
    RequestKind,
    RequestState,
    Transition,
    _utcnow,
)
from bot.approvals.scripts import (
    _ATTACH_LUA,
    _CREATE_LUA,
    _INDEX_CAS_LUA,
    _INDEX_RELEASE_LUA,
    _OUTCOME_LUA,
    _TRANSITION_LUA,
)

# The package's logger name, unchanged by the split into modules.
log = logging.getLogger("bot.approvals")

DEFAULT_RETENTION = timedelta(days=30)


class ApprovalStore:
    """Approval requests in Redis. Every public method raises :class:`StoreUnavailable` when Redis does
    not answer *before* anything changed; see the ``bot.approvals`` docstring for the guarantees."""

    def __init__(
        self,
        client: redis.Redis[Any],
        *,
        ttl: timedelta,
        clock: Clock = _utcnow,
        prefix: str = "patbot",
        audit: AuditLog | None = None,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("approval TTL must be positive")
        self._redis = client
        self._clock = clock
        self.prefix = prefix
        self.ttl = ttl
        self.retention = retention
        self.audit = audit if audit is not None else AuditLog(client, prefix=prefix, clock=clock)
        self._create_script = client.register_script(_CREATE_LUA)
        self._transition_script = client.register_script(_TRANSITION_LUA)
        self._outcome_script = client.register_script(_OUTCOME_LUA)
        self._attach_script = client.register_script(_ATTACH_LUA)
        self._index_cas_script = client.register_script(_INDEX_CAS_LUA)
        self._index_release_script = client.register_script(_INDEX_RELEASE_LUA)

    # -- keys

    def request_key(self, request_id: str) -> str:
        return f"{self.prefix}:req:{{{request_id}}}"

    def pending_by_key(self, kind: RequestKind | str, subject: str) -> str:
        return f"{self.prefix}:pending-by:{RequestKind(kind)}:{subject}"

    @property
    def pending_key(self) -> str:
        return f"{self.prefix}:pending"

    @property
    def in_doubt_key(self) -> str:
        return f"{self.prefix}:in-doubt"

    # -- time

    def _now(self, now: datetime | None = None) -> datetime:
        return _aware(now if now is not None else self._clock())

    @property
    def _retention_ms(self) -> int:
        return max(1, self.retention // timedelta(milliseconds=1))

    # -- create

    def create(self, draft: RequestDraft, *, now: datetime | None = None) -> ApprovalRequest:
        """Store a new pending request and log it.

        Raises :class:`DuplicateRequest` (carrying the existing request) while a pending, unexpired
        request of the same kind for the same subject exists, and :class:`StoreUnavailable`.

        Order of writes: the request hash (with a safety expiry), then the ``pending`` zset entry, then
        the pending-by key (SET NX, or compare-and-swap over a stale one). Whoever holds the pending-by
        key owns (kind, subject); a loser deletes its hash again. Because the hash is written before any
        pending-by key can name it, "the named request is not pending / expired / missing" can only
        become true once and stay true, so replacing such a stale key is safe.
        """
        if not draft.subject:
            raise ValueError("subject must not be empty")
        created_at = self._now(now)
        ttl_ms = max(1, self.ttl // timedelta(milliseconds=1))
        with _guard():
            request = self._write_new(draft, created_at, ttl_ms)
            key = self.request_key(request.id)
            claimed = False
            try:
                self._redis.zadd(self.pending_key, {request.id: _us(request.expires_at)})
                claimed = self._claim_subject(request, created_at, ttl_ms)
            finally:
                if not claimed:
                    self._discard(request.id, key)
        self.audit.append_best_effort(AuditEvent.CREATED, request, actor=draft.requester, at=created_at)
        return request

    def _write_new(self, draft: RequestDraft, created_at: datetime, ttl_ms: int) -> ApprovalRequest:
        nonce = secrets.token_hex(8)
        params = {str(k): str(v) for k, v in draft.params.items()}
        expires_at = created_at + self.ttl
        for _ in range(8):
            request = ApprovalRequest(
                id=_new_id(),
                kind=RequestKind(draft.kind),
                subject=draft.subject,
                workspace=draft.workspace,
                requester=draft.requester,
                reason=draft.reason,
                params=params,
                created_at=created_at,
                expires_at=expires_at,
                owner=draft.owner,
                self_service=draft.self_service,
            )
            fields = {
                "id": request.id,
                "kind": str(request.kind),
                "subject": request.subject,
                "workspace": request.workspace,
                "requester": request.requester,
                "reason": request.reason,
                "params": json.dumps(params, sort_keys=True),
                "created_at": _iso(created_at),
                "expires_at": _iso(expires_at),
                "expires_at_us": str(_us(expires_at)),
                "state": str(RequestState.PENDING),
                "owner": request.owner or "",
                "self_service": "1" if request.self_service else "",
            }
            args: list[str] = [nonce, str(ttl_ms + self._retention_ms)]
            for name, value in fields.items():
                args += [name, value]
            if int(self._create_script(keys=[self.request_key(request.id)], args=args)) == 1:
                return request
        raise RuntimeError("could not allocate a unique approval request id")  # pragma: no cover

    def _claim_subject(self, request: ApprovalRequest, now: datetime, ttl_ms: int) -> bool:
        """Make ``request`` the holder of its pending-by key, or raise DuplicateRequest."""
        index = self.pending_by_key(request.kind, request.subject)
        for _ in range(16):
            if self._redis.set(index, request.id, nx=True, px=ttl_ms):
                return True
            holder = self._redis.get(index)
            if holder is None:
                continue  # expired between SET NX and GET: try again
            holder_id = _s(holder)
            if holder_id == request.id:
                return True  # a retried SET that had succeeded
            existing = self._load(holder_id) if _valid_id(holder_id) else None
            if existing is not None and existing.state is RequestState.PENDING and now < existing.expires_at:
                raise DuplicateRequest(existing)
            if int(self._index_cas_script(keys=[index], args=[holder_id, request.id, ttl_ms])) == 1:
                return True
        raise StoreUnavailable()  # pragma: no cover - sixteen lost races in a row

    def _discard(self, request_id: str, key: str) -> None:
        """Best-effort removal of a request that never became visible (duplicate or failed create)."""
        try:
            self._redis.delete(key)
            self._redis.zrem(self.pending_key, request_id)
        except _UNAVAILABLE_ERRORS:
            log.warning("could not discard unclaimed approval request %s; it will expire", request_id)

    # -- read

    def _load(self, request_id: str) -> ApprovalRequest | None:
        fields = _pairs(self._redis.hgetall(self.request_key(request_id)))
        return _request_from_hash(fields) if fields else None

    def get(self, request_id: str) -> ApprovalRequest:
        """The request with this id; raises :class:`RequestNotFound` or :class:`StoreUnavailable`."""
        if not _valid_id(request_id):
            raise RequestNotFound(request_id)
        with _guard():
            request = self._load(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request

    def _load_many(self, ids: list[str]) -> list[tuple[str, ApprovalRequest | None]]:
        pipe = self._redis.pipeline(transaction=False)
        for request_id in ids:
            pipe.hgetall(self.request_key(request_id))
        results = pipe.execute()
        return [
            (request_id, _request_from_hash(f) if (f := _pairs(raw)) else None)
            for request_id, raw in zip(ids, results, strict=True)
        ]

    def pending(self, *, now: datetime | None = None) -> list[ApprovalRequest]:
        """Pending requests that have not reached their expiry yet, soonest expiry first.

        Requests past their expiry but not swept yet are left out (``expire_due`` reports them).
        """
        current = self._now(now)
        with _guard():
            ids = [_s(i) for i in self._redis.zrange(self.pending_key, 0, -1)]
            loaded = self._load_many(ids)
        result = []
        stale = []
        for request_id, request in loaded:
            if request is None or request.state is not RequestState.PENDING:
                stale.append(request_id)
            elif current < request.expires_at:
                result.append(request)
        self._forget_pending(stale)
        return result

    def in_doubt(self) -> list[ApprovalRequest]:
        """Approved (claimed) requests with no outcome recorded, oldest claim first.

        A request is here for the few seconds its winner is acting, and forever if the winner crashed
        before :meth:`record_outcome`: someone must then check Databricks by hand.
        """
        with _guard():
            ids = [_s(i) for i in self._redis.zrange(self.in_doubt_key, 0, -1)]
            loaded = self._load_many(ids)
        result = []
        for request_id, request in loaded:
            if request is not None and request.in_doubt:
                result.append(request)
            else:
                self._best_effort(self._redis.zrem, self.in_doubt_key, request_id)
        return result

    # -- transitions

    def _run_transition(self, request_id: str, mode: str, actor: str, now: datetime) -> tuple[str, Any]:
        reply = self._transition_script(
            keys=[self.request_key(request_id)],
            args=[mode, actor, _us(now), _iso(now), self._retention_ms, secrets.token_hex(8)],
        )
        return _s(reply[0]), reply[1]

    def decide(
        self,
        request_id: str,
        decision: RequestState | str,
        actor: str,
        now: datetime | None = None,
    ) -> Transition:
        """Move a pending request to ``approved`` / ``denied`` / ``cancelled``, atomically.

        Exactly one caller per request gets a :class:`Transition` back; for ``approved`` that caller
        must perform the action and then call :meth:`record_outcome`. Every other caller gets an
        exception *raised*: :class:`AlreadyDecided` (someone else decided first, or it already
        expired), :class:`RequestExpired` (it is past ``expires_at``; ``transitioned`` tells whether
        this call is the one that marked it expired), :class:`RequestNotFound`, :class:`StoreUnavailable`.
        """
        state = RequestState(decision)
        if state not in DECISIONS:
            raise ValueError(f"not a decision: {decision!r}")
        if not actor:
            raise ValueError("actor must not be empty")
        if not _valid_id(request_id):
            raise RequestNotFound(request_id)
        current = self._now(now)
        with _guard():
            status, raw = self._run_transition(request_id, str(state), actor, current)
        if status == "missing":
            raise RequestNotFound(request_id)
        request = _request_from_hash(_pairs(raw))
        if status == "won":
            self._after_leaving_pending(request, current)
            return Transition(request=request)
        if status == "expired":
            self._after_leaving_pending(request, current)
            raise RequestExpired(request, transitioned=True)
        if request.state is RequestState.EXPIRED:
            raise RequestExpired(request, transitioned=False)
        raise AlreadyDecided(request)

    def expire_due(self, now: datetime | None = None) -> list[ApprovalRequest]:
        """Move every pending request whose expiry has passed (``expires_at <= now``) to ``expired``.

        Returns the requests this call expired (so the caller can update their admin messages); a
        request expired concurrently by another replica is reported by that replica only.
        """
        current = self._now(now)
        with _guard():
            due = [_s(i) for i in self._redis.zrangebyscore(self.pending_key, "-inf", _us(current))]
        expired: list[ApprovalRequest] = []
        for request_id in due:
            try:
                with _guard():
                    status, raw = self._run_transition(request_id, "sweep", "", current)
            except StoreUnavailable:
                if not expired:
                    raise
                # Report what this sweep already expired, so their admin messages get updated.
                log.warning("Redis failed mid-sweep; %d request(s) expired before the failure", len(expired))
                break
            if status == "expired":
                request = _request_from_hash(_pairs(raw))
                self._after_leaving_pending(request, current)
                expired.append(request)
            elif status in ("missing", "already"):
                self._forget_pending([request_id])
        return expired

    def _after_leaving_pending(self, request: ApprovalRequest, now: datetime) -> None:
        """Cross-slot bookkeeping after the atomic transition; best-effort, never raises."""
        self._forget_pending([request.id])
        self._best_effort(
            self._index_release_script,
            keys=[self.pending_by_key(request.kind, request.subject)],
            args=[request.id],
        )
        if request.state is RequestState.APPROVED:
            self._best_effort(self._redis.zadd, self.in_doubt_key, {request.id: _us(now)})
        event = AuditEvent(str(request.state))
        self.audit.append_best_effort(event, request, actor=request.decided_by, at=now)

    def _forget_pending(self, ids: list[str]) -> None:
        if ids:
            self._best_effort(self._redis.zrem, self.pending_key, *ids)

    @staticmethod
    def _best_effort(func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except _UNAVAILABLE_ERRORS as exc:
            log.warning("approvals bookkeeping skipped (Redis unavailable): %s", exc)

    # -- outcome and message

    def record_outcome(
        self,
        request_id: str,
        outcome: str,
        detail: str | None = None,
        *,
        now: datetime | None = None,
    ) -> ApprovalRequest:
        """Record what the winner's action did (e.g. ``revoked``, ``failed``); first write wins.

        Idempotent: a repeated call leaves the first outcome in place and returns the request as stored
        (only the first call is audited). Raises :class:`InvalidTransition` unless the request is
        ``approved``, :class:`RequestNotFound`, :class:`StoreUnavailable` (then the request stays in
        doubt; retrying is safe).
        """
        if not outcome:
            raise ValueError("outcome must not be empty")
        if not _valid_id(request_id):
            raise RequestNotFound(request_id)
        current = self._now(now)
        with _guard():
            reply = self._outcome_script(
                keys=[self.request_key(request_id)],
                args=[outcome, detail or "", _iso(current), self._retention_ms],
            )
        status, raw = _s(reply[0]), reply[1]
        if status == "missing":
            raise RequestNotFound(request_id)
        request = _request_from_hash(_pairs(raw))
        if status == "bad_state":
            raise InvalidTransition(request)
        if status == "recorded":
            self._best_effort(self._redis.zrem, self.in_doubt_key, request_id)
            self.audit.append_best_effort(
                AuditEvent.OUTCOME,
                request,
                actor=request.decided_by,
                outcome=outcome,
                detail=detail,
                at=current,
            )
        elif request.outcome != outcome or request.outcome_detail != (detail or None):
            log.warning(
                "request %s already has outcome %r; ignoring %r", request_id, request.outcome, outcome
            )
        return request

    def attach_message(self, request_id: str, channel: str, ts: str) -> ApprovalRequest:
        """Remember where the admin-channel message of this request lives (any state)."""
        if not _valid_id(request_id):
            raise RequestNotFound(request_id)
        with _guard():
            reply = self._attach_script(keys=[self.request_key(request_id)], args=[channel, ts])
        if _s(reply[0]) == "missing":
            raise RequestNotFound(request_id)
        return _request_from_hash(_pairs(reply[1]))
