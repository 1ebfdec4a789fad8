"""Approval requests: a Redis-backed store with an atomic state machine, and the audit log.

Slack-free and Databricks-free: handlers create requests, post the admin message, call
:meth:`ApprovalStore.decide` when a button is clicked, perform the action only when they won, and
then call :meth:`ApprovalStore.record_outcome`. Who may click (approver lists, four eyes) is a policy
decision made elsewhere; this package guarantees atomicity, expiry and the log.

State machine (every arrow is one atomic Lua script)::

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

Key layout (``prefix`` defaults to ``patbot``; every key carries the hash tag ``{prefix}``)::

    {prefix}:req:<id>                    hash   one request; ``_guard`` names its pending-by key
    {prefix}:pending                     zset   pending ids scored by expires_at (µs since epoch)
    {prefix}:in-doubt                    zset   approved ids without an outcome, scored by decided_at
    {prefix}:pending-by:<kind>:<subject> string id of the pending request for (kind, subject): the
                                                duplicate guard
    {prefix}:audit                       stream the audit log (XADD MAXLEN ~ 100000)

Each transition (create, decide, expire, record_outcome, attach_message) is ONE Lua script that
moves the request hash and its bookkeeping together: the ``pending`` / ``in-doubt`` sets, the guard and
the audit entry change with the hash or not at all. Redis does not roll a failing script back, so each
script checks everything (down to the type of every key it writes) before its first write. A failure
before the script runs changes nothing and raises :class:`StoreUnavailable`; a lost reply leaves the
whole transition done (see retries below).

Deployment: one Redis primary, reached at one address — standalone, Sentinel-fronted (an address that
always leads to the current primary) or a managed service's primary endpoint. ``connect_redis`` makes
a plain client: it speaks neither the Sentinel nor the Cluster protocol, so Redis Cluster is not
supported, even though all keys share one slot.

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
from bot.approvals.plans import MigratePlan, PatRef, Plan, PolicyPlan, RevokePlan, ScopePlan, TokenPlan
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
    "MigratePlan",
    "PatRef",
    "Plan",
    "PolicyPlan",
    "RequestDraft",
    "RequestExpired",
    "RequestKind",
    "RequestNotFound",
    "RequestState",
    "RevokePlan",
    "ScopePlan",
    "StoreUnavailable",
    "TokenPlan",
    "Transition",
    "connect_redis",
]
