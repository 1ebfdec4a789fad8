"""Approval requests: a Redis-backed store with an atomic state machine, and the audit log.

Slack-free and Databricks-free: handlers create requests, post the admin message, call
:meth:`ApprovalStore.decide` when a button is clicked, perform the action only when they won, and
then call :meth:`ApprovalStore.record_outcome`. Who may click (approver lists, four eyes) is a policy
decision made elsewhere; this module guarantees atomicity, expiry and the log.

State machine (every arrow is one atomic Lua script on the request's own hash)::

    pending --decide(approved)--> approved --record_outcome--> approved + outcome
    pending --decide(denied)----> denied
    pending --decide(cancelled)-> cancelled
    pending --(now >= expires_at: decide() or expire_due())--> expired

``approved`` means *claimed*: exactly one caller of :meth:`ApprovalStore.decide` gets a
:class:`Transition` back and is the only one allowed to act (revoke, create, ...). Every other caller
gets :class:`AlreadyDecided` or :class:`RequestExpired` **raised**. If the process dies between the
claim and :meth:`ApprovalStore.record_outcome`, the request stays ``approved`` with ``outcome`` None:
it is *in doubt* (listed by :meth:`ApprovalStore.in_doubt`, visible in the audit log as an
``approved`` entry without an ``outcome`` entry) and is never acted on again automatically — a
human checks Databricks. Acting twice is impossible by construction; acting zero times is the
failure mode, and it is visible.

Key layout (``prefix`` defaults to ``patbot``)::

    {prefix}:req:{<id>}                 hash   one request (all per-request state; Cluster hash tag)
    {prefix}:pending-by:<kind>:<subject> string id of the pending request for (kind, subject);
                                                SET NX PX ttl — the duplicate guard
    {prefix}:pending                    zset   pending ids scored by expires_at (µs since epoch)
    {prefix}:in-doubt                   zset   approved ids without an outcome, scored by decided_at
    {prefix}:audit                      stream the audit log (XADD MAXLEN ~ 100000)

Redis Cluster: every Lua script touches exactly one key (a request hash, or one pending-by key), so
each runs in one slot. The cross-slot bookkeeping (the ``pending`` / ``in-doubt`` sorted sets, the
pending-by key, the audit stream) is done with plain commands *after* the atomic per-request
transition. It is self-healing: the sweep and :meth:`ApprovalStore.pending` drop ids that are no
longer pending, and :meth:`ApprovalStore.create` treats a pending-by key pointing at a request that is
no longer pending (or has expired) as free. Bookkeeping after a transition has happened is
best-effort: if Redis fails there, the transition still stands and is reported to the caller (the
missed audit entry is written to the Python log instead), so a winner is never told it lost.

Retries are safe: each transition carries a random nonce stored on the hash, so a client-level retry
of a script that already ran (e.g. after a socket timeout) is recognised as the same call.

Times: ``expires_at`` is exclusive — at ``now == expires_at`` the request is already expired.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn, cast

import redis
import redis.exceptions
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.errors import ConfigError, GovernanceError

log = logging.getLogger(__name__)

__all__ = [
    "AlreadyDecided",
    "ApprovalError",
    "ApprovalRequest",
    "ApprovalStore",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "DuplicateRequest",
    "InvalidTransition",
    "RequestExpired",
    "RequestKind",
    "RequestNotFound",
    "RequestState",
    "StoreUnavailable",
    "Transition",
    "connect_redis",
]

Clock = Callable[[], datetime]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 10
DEFAULT_AUDIT_MAXLEN = 100_000
DEFAULT_RETENTION = timedelta(days=30)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------- enums


class RequestKind(StrEnum):
    REVOKE = "revoke"
    CREATE = "create"
    ROTATE = "rotate"
    POLICY = "policy"


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        """Every state but ``pending`` is final (``approved`` may still receive its outcome)."""
        return self is not RequestState.PENDING


DECISIONS = frozenset({RequestState.APPROVED, RequestState.DENIED, RequestState.CANCELLED})


class AuditEvent(StrEnum):
    CREATED = "created"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    OUTCOME = "outcome"


# -------------------------------------------------------------------------------------------- errors


class ApprovalError(GovernanceError):
    """Base of the approval errors; ``user_message`` is safe to show to a Slack user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class StoreUnavailable(ApprovalError):
    """Redis could not be reached (connection refused, timeout, read-only replica, loading ...)."""

    DEFAULT_MESSAGE = (
        "The approvals store is unavailable right now; nothing was changed. Try again in a minute."
    )

    def __init__(self, user_message: str = DEFAULT_MESSAGE) -> None:
        super().__init__(user_message)


class RequestNotFound(ApprovalError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"I can't find approval request `{request_id}`; it may have been cleaned up.")
        self.request_id = request_id


class DuplicateRequest(ApprovalError):
    """A pending, unexpired request of the same kind for the same subject already exists."""

    def __init__(self, existing: ApprovalRequest) -> None:
        super().__init__(
            f"A {existing.kind} request for {existing.subject} is already pending "
            f"(request `{existing.id}` by <@{existing.requester}>, expires {_fmt(existing.expires_at)})."
        )
        self.existing = existing


class AlreadyDecided(ApprovalError):
    """Raised to every caller of ``decide`` but the one that moved the request out of ``pending``."""

    def __init__(self, request: ApprovalRequest) -> None:
        if request.state is RequestState.EXPIRED:
            text = f"This request already expired ({_fmt(request.expires_at)}); nothing was done."
        else:
            by = f" by <@{request.decided_by}>" if request.decided_by else ""
            when = f" at {_fmt(request.decided_at)}" if request.decided_at else ""
            text = f"This request was already {request.state}{by}{when}; nothing more was done."
        super().__init__(text)
        self.request = request


class RequestExpired(ApprovalError):
    """The request's TTL has passed. ``transitioned`` is True when *this* call moved it to ``expired``
    (the caller should then update the admin message, like after :meth:`ApprovalStore.expire_due`)."""

    def __init__(self, request: ApprovalRequest, transitioned: bool) -> None:
        super().__init__(
            f"This request expired at {_fmt(request.expires_at)}; nothing was done. "
            "Ask again if it is still needed."
        )
        self.request = request
        self.transitioned = transitioned


class InvalidTransition(ApprovalError):
    """``record_outcome`` on a request that was not approved."""

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(f"Request `{request.id}` is {request.state}; no outcome can be recorded for it.")
        self.request = request


_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MasterDownError,
    ConnectionError,  # builtin: socket-level errors that escape redis-py
    TimeoutError,
)


@contextmanager
def _guard() -> Iterator[None]:
    """Map every "Redis is not answering" error onto :class:`StoreUnavailable`."""
    try:
        yield
    except _UNAVAILABLE_ERRORS as exc:
        raise StoreUnavailable() from exc


# ------------------------------------------------------------------------------------------ models


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    kind: RequestKind
    subject: str
    workspace: str
    requester: str
    reason: str
    params: dict[str, str]
    created_at: datetime
    expires_at: datetime
    state: RequestState = RequestState.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    outcome: str | None = None
    outcome_detail: str | None = None
    outcome_at: datetime | None = None
    admin_channel: str | None = None
    admin_ts: str | None = None
    owner: str | None = None

    @property
    def in_doubt(self) -> bool:
        """Claimed (approved) but no outcome recorded: the action may or may not have happened."""
        return self.state is RequestState.APPROVED and self.outcome is None

    def is_expired_at(self, now: datetime) -> bool:
        return self.state is RequestState.EXPIRED or (
            self.state is RequestState.PENDING and now >= self.expires_at
        )


@dataclass(frozen=True)
class Transition:
    """Returned by :meth:`ApprovalStore.decide` to the one caller that won.

    ``won`` is always True on a returned Transition (losers get an exception); it exists so code that
    passes transitions around can assert it. ``request`` is the request right after the transition.
    """

    request: ApprovalRequest
    previous_state: RequestState = RequestState.PENDING
    won: bool = True

    @property
    def state(self) -> RequestState:
        return self.request.state


@dataclass(frozen=True)
class AuditEntry:
    id: str  # the stream entry id ("<ms>-<seq>")
    event: str
    time: datetime
    request_id: str
    kind: str
    subject: str
    workspace: str
    requester: str
    actor: str | None = None
    outcome: str | None = None
    detail: str | None = None
    reason: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ helpers


def _fmt(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if dt else "?"


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


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def _valid_id(request_id: str) -> bool:
    return len(request_id) == _ID_LENGTH and all(c in _ID_ALPHABET for c in request_id)


def _request_from_hash(fields: Mapping[str, str]) -> ApprovalRequest:
    return ApprovalRequest(
        id=fields["id"],
        kind=RequestKind(fields["kind"]),
        subject=fields["subject"],
        workspace=fields["workspace"],
        requester=fields["requester"],
        reason=fields.get("reason", ""),
        params=dict(json.loads(fields.get("params") or "{}")),
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
    )


# -------------------------------------------------------------------------------------- Lua scripts
# Every script touches exactly one key (KEYS[1]) so it runs in one Cluster slot.

# Create the request hash unless the id is taken. ARGV: nonce, ttl+retention ms, field/value pairs...
_CREATE_LUA = """
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  if redis.call('HGET', key, '_nonce') == ARGV[1] then return 1 end
  return 0
end
redis.call('HSET', key, '_nonce', ARGV[1])
for i = 3, #ARGV - 1, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', key, tonumber(ARGV[2]))
return 1
"""

# Move a request out of pending. ARGV: mode (approved|denied|cancelled|sweep), actor, now_us, now_iso,
# retention_ms, nonce. Reply: {status, HGETALL} with status one of
#   missing  - no such request
#   won      - this call moved pending -> decision (or is a retry of the call that did)
#   expired  - this call moved pending -> expired (or is a retry of the call that did)
#   already  - the request had already left pending
#   not_due  - sweep only: still pending, not yet due
_TRANSITION_LUA = """
local key = KEYS[1]
local mode, actor, now_us, now_iso = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local retention_ms, nonce = tonumber(ARGV[5]), ARGV[6]
if redis.call('EXISTS', key) == 0 then return {'missing', {}} end
local state = redis.call('HGET', key, 'state')
if state ~= 'pending' then
  if redis.call('HGET', key, '_decision_nonce') == nonce then
    if state == 'expired' then return {'expired', redis.call('HGETALL', key)} end
    return {'won', redis.call('HGETALL', key)}
  end
  return {'already', redis.call('HGETALL', key)}
end
if now_us >= tonumber(redis.call('HGET', key, 'expires_at_us')) then
  redis.call('HSET', key, 'state', 'expired', 'decided_at', now_iso, '_decision_nonce', nonce)
  redis.call('PEXPIRE', key, retention_ms)
  return {'expired', redis.call('HGETALL', key)}
end
if mode == 'sweep' then return {'not_due', redis.call('HGETALL', key)} end
redis.call('HSET', key, 'state', mode, 'decided_by', actor, 'decided_at', now_iso, '_decision_nonce', nonce)
if mode == 'approved' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, retention_ms)
end
return {'won', redis.call('HGETALL', key)}
"""

# Record the outcome of an approved request, first write wins. ARGV: outcome, detail, now_iso,
# retention_ms. Reply: {status, HGETALL}, status: missing | recorded | already | bad_state.
_OUTCOME_LUA = """
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'missing', {}} end
if redis.call('HGET', key, 'state') ~= 'approved' then return {'bad_state', redis.call('HGETALL', key)} end
local current = redis.call('HGET', key, 'outcome')
if current and current ~= '' then return {'already', redis.call('HGETALL', key)} end
redis.call('HSET', key, 'outcome', ARGV[1], 'outcome_detail', ARGV[2], 'outcome_at', ARGV[3])
redis.call('PEXPIRE', key, tonumber(ARGV[4]))
return {'recorded', redis.call('HGETALL', key)}
"""

# Set the admin message coordinates of an existing request. ARGV: channel, ts.
_ATTACH_LUA = """
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'missing', {}} end
redis.call('HSET', key, 'admin_channel', ARGV[1], 'admin_ts', ARGV[2])
return {'ok', redis.call('HGETALL', key)}
"""

# Point the pending-by key at a new id iff it still holds the expected (stale) id. ARGV: old, new, px.
_INDEX_CAS_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
  return 1
end
return 0
"""

# Delete the pending-by key iff it still points at this id. ARGV: id.
_INDEX_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# ---------------------------------------------------------------------------------------- audit log


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


# ------------------------------------------------------------------------------------------- store


class ApprovalStore:
    """Approval requests in Redis. Every public method raises :class:`StoreUnavailable` when Redis does
    not answer *before* anything changed; see the module docstring for the guarantees."""

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

    def create(
        self,
        kind: RequestKind | str,
        subject: str,
        workspace: str,
        requester: str,
        reason: str = "",
        params: Mapping[str, str] | None = None,
        owner: str | None = None,
        *,
        now: datetime | None = None,
    ) -> ApprovalRequest:
        """Store a new pending request and log it.

        Raises :class:`DuplicateRequest` (carrying the existing request) while a pending, unexpired
        request of the same kind for the same subject exists, and :class:`StoreUnavailable`.

        Order of writes: the request hash (with a safety expiry), then the ``pending`` zset entry, then
        the pending-by key (SET NX, or compare-and-swap over a stale one). Whoever holds the pending-by
        key owns (kind, subject); a loser deletes its hash again. Because the hash is written before any
        pending-by key can name it, "the named request is not pending / expired / missing" can only
        become true once and stay true, so replacing such a stale key is safe.
        """
        kind = RequestKind(kind)
        if not subject:
            raise ValueError("subject must not be empty")
        created_at = self._now(now)
        expires_at = created_at + self.ttl
        params = {str(k): str(v) for k, v in (params or {}).items()}
        ttl_ms = max(1, self.ttl // timedelta(milliseconds=1))
        with _guard():
            request = self._write_new(
                kind, subject, workspace, requester, reason, params, owner, created_at, expires_at, ttl_ms
            )
            key = self.request_key(request.id)
            claimed = False
            try:
                self._redis.zadd(self.pending_key, {request.id: _us(expires_at)})
                claimed = self._claim_subject(request, created_at, ttl_ms)
            finally:
                if not claimed:
                    self._discard(request.id, key)
        self.audit.append_best_effort(AuditEvent.CREATED, request, actor=requester, at=created_at)
        return request

    def _write_new(
        self,
        kind: RequestKind,
        subject: str,
        workspace: str,
        requester: str,
        reason: str,
        params: dict[str, str],
        owner: str | None,
        created_at: datetime,
        expires_at: datetime,
        ttl_ms: int,
    ) -> ApprovalRequest:
        nonce = secrets.token_hex(8)
        for _ in range(8):
            request = ApprovalRequest(
                id=_new_id(),
                kind=kind,
                subject=subject,
                workspace=workspace,
                requester=requester,
                reason=reason,
                params=params,
                created_at=created_at,
                expires_at=expires_at,
                owner=owner,
            )
            fields = {
                "id": request.id,
                "kind": str(kind),
                "subject": subject,
                "workspace": workspace,
                "requester": requester,
                "reason": reason,
                "params": json.dumps(params, sort_keys=True),
                "created_at": _iso(created_at),
                "expires_at": _iso(expires_at),
                "expires_at_us": str(_us(expires_at)),
                "state": str(RequestState.PENDING),
                "owner": owner or "",
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

    def ping(self) -> bool:
        """True when Redis answers (for ``/readyz``)."""
        try:
            return bool(self._redis.ping())
        except _UNAVAILABLE_ERRORS:
            return False


# --------------------------------------------------------------------------------------- factory


def connect_redis(url: str | None) -> tuple[redis.Redis[Any], bool]:
    """A Redis client for ``REDIS_URL``, and whether it is the embedded in-memory one.

    ``redis://``, ``rediss://`` and ``unix://`` give a real client (str replies, 2 s socket timeouts,
    one quick retry on connection errors, health checks on idle connections); no URL gives an embedded
    ``fakeredis`` server with Lua support — ``embedded=True`` tells the caller to warn that approvals do
    not survive a restart. No connection is attempted for a real URL (check with ``ping``).
    """
    if url is None or not url.strip():
        return _embedded_redis(), True
    url = url.strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    try:
        client: redis.Redis[Any] = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            health_check_interval=15,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
            client_name="patbot",
        )
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a valid Redis URL: {exc}") from None
    return client, False


def _embedded_redis() -> redis.Redis[Any]:
    import fakeredis

    client: redis.Redis[Any] = fakeredis.FakeRedis(decode_responses=True)
    try:
        if cast(Any, client).eval("return 1", 0) != 1:
            raise RuntimeError("unexpected reply")
    except Exception as exc:  # lupa missing or broken
        _no_lua(exc)
    return client


def _no_lua(exc: Exception) -> NoReturn:
    raise ConfigError(
        "REDIS_URL is unset and the embedded store has no Lua support; install fakeredis[lua] "
        f"(lupa) or set REDIS_URL ({type(exc).__name__})"
    ) from exc
