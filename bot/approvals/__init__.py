"""Approval requests: a Redis-backed store with an atomic state machine, and the audit log.

Slack-free and Databricks-free: handlers create requests, post the admin message, call
:meth:`ApprovalStore.decide` when a button is clicked, perform the action only when they won, and
then call :meth:`ApprovalStore.record_outcome`. Who may click (approver lists, four eyes) is a policy
decision made elsewhere; this package guarantees atomicity, expiry and the log.

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

from bot.approvals.audit_log import DEFAULT_AUDIT_MAXLEN as DEFAULT_AUDIT_MAXLEN
from bot.approvals.audit_log import AuditLog
from bot.approvals.connection import connect_redis
from bot.approvals.errors import (
    AlreadyDecided,
    ApprovalError,
    DuplicateRequest,
    InvalidTransition,
    RequestExpired,
    RequestNotFound,
    StoreUnavailable,
)
from bot.approvals.models import DECISIONS as DECISIONS
from bot.approvals.models import (
    ApprovalRequest,
    AuditEntry,
    AuditEvent,
    RequestDraft,
    RequestKind,
    RequestState,
    Transition,
)
from bot.approvals.models import Clock as Clock
from bot.approvals.store import DEFAULT_RETENTION as DEFAULT_RETENTION
from bot.approvals.store import ApprovalStore

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
    "RequestDraft",
    "RequestExpired",
    "RequestKind",
    "RequestNotFound",
    "RequestState",
    "StoreUnavailable",
    "Transition",
    "connect_redis",
]
