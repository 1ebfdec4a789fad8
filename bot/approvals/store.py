"""The approval store: requests in Redis, moved through the state machine by atomic Lua scripts."""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import redis

from bot.approvals.audit_log import AuditLog
from bot.approvals.codec import (
    _aware,
    _hash_tag,
    _iso,
    _new_id,
    _pairs,
    _request_from_hash,
    _s,
    _us,
    _valid_id,
)
from bot.approvals.errors import (
    AlreadyDecided,
    DuplicateRequest,
    InvalidTransition,
    RequestExpired,
    RequestNotFound,
    StoreUnavailable,
    _redis_errors,
)
from bot.approvals.models import (
    DECISIONS,
    ApprovalRequest,
    Clock,
    RequestDraft,
    RequestKind,
    RequestState,
    Transition,
    _utcnow,
)
from bot.approvals.plans import check_plan, empty_plan, encode_plan
from bot.approvals.scripts import _ATTACH_LUA, _CREATE_LUA, _OUTCOME_LUA, _TRANSITION_LUA

# The package's logger name, unchanged by the split into modules.
log = logging.getLogger("bot.approvals")

DEFAULT_RETENTION = timedelta(days=30)

# How often create() reads the guard again after another create changed it under its feet.
_CREATE_ATTEMPTS = 16


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
        self._tag = _hash_tag(prefix)
        self.prefix = prefix
        self.ttl = ttl
        self.retention = retention
        self.audit = audit if audit is not None else AuditLog(client, prefix=prefix)
        self._create_script = client.register_script(_CREATE_LUA)
        self._transition_script = client.register_script(_TRANSITION_LUA)
        self._outcome_script = client.register_script(_OUTCOME_LUA)
        self._attach_script = client.register_script(_ATTACH_LUA)

    # -- keys: all share the hash tag {prefix}

    def request_key(self, request_id: str) -> str:
        return f"{self._tag}:req:{request_id}"

    def pending_by_key(self, kind: RequestKind | str, subject: str) -> str:
        return f"{self._tag}:pending-by:{RequestKind(kind)}:{subject}"

    @property
    def pending_key(self) -> str:
        return f"{self._tag}:pending"

    @property
    def in_doubt_key(self) -> str:
        return f"{self._tag}:in-doubt"

    # -- time

    def _now(self, now: datetime | None = None) -> datetime:
        return _aware(now if now is not None else self._clock())

    @property
    def _retention_ms(self) -> int:
        return max(1, self.retention // timedelta(milliseconds=1))

    # -- create

    def create(self, draft: RequestDraft, *, now: datetime | None = None) -> ApprovalRequest:
        """Store a new pending request and log it, in one atomic script.

        Raises :class:`DuplicateRequest` (carrying the existing request) while a pending, unexpired
        request of the same kind for the same subject exists, and :class:`StoreUnavailable`.

        The (kind, subject) guard key names the request that holds it. A script may only touch the keys
        it is given, so the holder's id is read first and its hash passed in; the script checks that
        the guard still names that holder (else this reads the new holder and tries again), refuses a
        live holder, and replaces a stale one (decided, expired or gone).
        """
        if not draft.subject:
            raise ValueError("subject must not be empty")
        kind = RequestKind(draft.kind)
        plan = draft.plan if draft.plan is not None else empty_plan(kind)
        check_plan(kind, plan)
        created_at = self._now(now)
        expires_at = created_at + self.ttl
        request = ApprovalRequest(
            id=_new_id(),
            kind=kind,
            subject=draft.subject,
            workspace=draft.workspace,
            requester=draft.requester,
            reason=draft.reason,
            plan=plan,
            created_at=created_at,
            expires_at=expires_at,
            owner=draft.owner,
            self_service=draft.self_service,
        )
        guard = self.pending_by_key(request.kind, request.subject)
        nonce = secrets.token_hex(8)
        # A pending hash and its guard outlive the TTL by the retention, in case no sweep ever runs.
        keep_ms = max(1, self.ttl // timedelta(milliseconds=1)) + self._retention_ms
        with _redis_errors():
            holder = _s(self._redis.get(guard) or "")
            for _ in range(_CREATE_ATTEMPTS):
                keys = [self.request_key(request.id), self.pending_key, guard, self.audit.key]
                if _valid_id(holder):
                    keys.append(self.request_key(holder))
                args: list[str | int] = [request.id, nonce, holder, _us(created_at), _iso(created_at)]
                args += [_us(expires_at), keep_ms, self.audit.maxlen]
                for name, value in self._hash_fields(request).items():
                    args += [name, value]
                reply = self._create_script(keys=keys, args=args)
                status = _s(reply[0])
                if status == "created":
                    return request
                if status == "duplicate":
                    raise DuplicateRequest(_request_from_hash(_pairs(reply[1])))
                if status == "moved":
                    holder = _s(reply[1])
                else:  # id_taken
                    request = replace(request, id=_new_id())
        raise StoreUnavailable()  # pragma: no cover - sixteen lost races in a row

    @staticmethod
    def _hash_fields(request: ApprovalRequest) -> dict[str, str]:
        return {
            "id": request.id,
            "kind": str(request.kind),
            "subject": request.subject,
            "workspace": request.workspace,
            "requester": request.requester,
            "reason": request.reason,
            "plan": encode_plan(request.plan),
            "created_at": _iso(request.created_at),
            "expires_at": _iso(request.expires_at),
            "expires_at_us": str(_us(request.expires_at)),
            "state": str(RequestState.PENDING),
            "owner": request.owner or "",
            "self_service": "1" if request.self_service else "",
        }

    # -- read

    def _load(self, request_id: str) -> ApprovalRequest | None:
        fields = _pairs(self._redis.hgetall(self.request_key(request_id)))
        return _request_from_hash(fields) if fields else None

    def get(self, request_id: str) -> ApprovalRequest:
        """The request with this id; raises :class:`RequestNotFound` or :class:`StoreUnavailable`."""
        if not _valid_id(request_id):
            raise RequestNotFound(request_id)
        with _redis_errors():
            request = self._load(request_id)
        if request is None:
            raise RequestNotFound(request_id)
        return request

    def _load_many(self, ids: list[str]) -> list[ApprovalRequest | None]:
        pipe = self._redis.pipeline(transaction=False)
        for request_id in ids:
            pipe.hgetall(self.request_key(request_id))
        return [_request_from_hash(f) if (f := _pairs(raw)) else None for raw in pipe.execute()]

    def pending(self, *, now: datetime | None = None) -> list[ApprovalRequest]:
        """Pending requests that have not reached their expiry yet, soonest expiry first.

        Requests past their expiry but not swept yet are left out (``expire_due`` reports them).
        """
        current = self._now(now)
        with _redis_errors():
            ids = [_s(i) for i in self._redis.zrange(self.pending_key, 0, -1)]
            loaded = self._load_many(ids)
        return [
            r for r in loaded if r is not None and r.state is RequestState.PENDING and current < r.expires_at
        ]

    def in_doubt(self) -> list[ApprovalRequest]:
        """Approved (claimed) requests with no outcome recorded, oldest claim first.

        A request is here for the few seconds its winner is acting, and forever if the winner crashed
        before :meth:`record_outcome`: someone must then check Databricks by hand.
        """
        with _redis_errors():
            ids = [_s(i) for i in self._redis.zrange(self.in_doubt_key, 0, -1)]
            loaded = self._load_many(ids)
        return [r for r in loaded if r is not None and r.in_doubt]

    # -- transitions

    def _transition(self, request_id: str, mode: str, actor: str, now: datetime) -> tuple[str, Any]:
        """Run the transition script: the hash, pending, in-doubt, the guard and the audit entry.

        The guard's key name is stored in the hash at creation; it is read first so the script can be
        given it, and the script checks it.
        """
        key = self.request_key(request_id)
        args = [request_id, mode, actor, _us(now), _iso(now), self._retention_ms, secrets.token_hex(8)]
        args.append(self.audit.maxlen)
        for _ in range(3):
            guard = self._redis.hget(key, "_guard")
            keys = [key, self.pending_key, self.in_doubt_key, self.audit.key]
            if guard is not None:
                keys.append(_s(guard))
            reply = self._transition_script(keys=keys, args=args)
            status = _s(reply[0])
            if status != "moved":
                return status, reply[1]
        raise StoreUnavailable()  # pragma: no cover - a hash's guard name never changes

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
        with _redis_errors():
            status, raw = self._transition(request_id, str(state), actor, current)
        if status == "missing":
            raise RequestNotFound(request_id)
        request = _request_from_hash(_pairs(raw))
        if status == "won":
            return Transition(request=request)
        if status == "expired":
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
        with _redis_errors():
            due = [_s(i) for i in self._redis.zrangebyscore(self.pending_key, "-inf", _us(current))]
        expired: list[ApprovalRequest] = []
        for request_id in due:
            try:
                with _redis_errors():
                    status, raw = self._transition(request_id, "sweep", "", current)
            except StoreUnavailable:
                if not expired:
                    raise
                # Report what this sweep already expired, so their admin messages get updated.
                log.warning("Redis failed mid-sweep; %d request(s) expired before the failure", len(expired))
                break
            if status == "expired":
                expired.append(_request_from_hash(_pairs(raw)))
        return expired

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
        with _redis_errors():
            reply = self._outcome_script(
                keys=[self.request_key(request_id), self.in_doubt_key, self.audit.key],
                args=[
                    request_id,
                    outcome,
                    detail or "",
                    _iso(current),
                    self._retention_ms,
                    self.audit.maxlen,
                ],
            )
        status, raw = _s(reply[0]), reply[1]
        if status == "missing":
            raise RequestNotFound(request_id)
        request = _request_from_hash(_pairs(raw))
        if status == "bad_state":
            raise InvalidTransition(request)
        if status == "already" and (request.outcome != outcome or request.outcome_detail != (detail or None)):
            log.warning(
                "request %s already has outcome %r; ignoring %r", request_id, request.outcome, outcome
            )
        return request

    def attach_message(self, request_id: str, channel: str, ts: str) -> ApprovalRequest:
        """Remember where the admin-channel message of this request lives (any state)."""
        if not _valid_id(request_id):
            raise RequestNotFound(request_id)
        with _redis_errors():
            reply = self._attach_script(keys=[self.request_key(request_id)], args=[channel, ts])
        if _s(reply[0]) == "missing":
            raise RequestNotFound(request_id)
        return _request_from_hash(_pairs(reply[1]))
