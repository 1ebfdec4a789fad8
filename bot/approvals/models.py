"""The approval domain: request kinds and states, audit events, and the records the store returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.approvals.plans import Plan

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RequestKind(StrEnum):
    REVOKE = "revoke"
    CREATE = "create"
    ROTATE = "rotate"
    POLICY = "policy"
    MIGRATE = "migrate"
    SCOPE = "scope"


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


DECISIONS = frozenset({RequestState.APPROVED, RequestState.DENIED, RequestState.CANCELLED})


class AuditEvent(StrEnum):
    CREATED = "created"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    OUTCOME = "outcome"


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    kind: RequestKind
    subject: str
    workspace: str
    requester: str
    reason: str
    plan: Plan
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
    self_service: bool = False

    @property
    def in_doubt(self) -> bool:
        """Claimed (approved) but no outcome recorded: the action may or may not have happened."""
        return self.state is RequestState.APPROVED and self.outcome is None


@dataclass(frozen=True)
class RequestDraft:
    """What a new request is about, before the store gives it an id and an expiry.

    ``self_service`` marks the owner revoking (or narrowing) their own token: the owner confirms it, no
    approver does.
    """

    kind: RequestKind
    subject: str
    workspace: str
    requester: str
    reason: str = ""
    plan: Plan | None = None
    """What approval will do; None: the kind's empty plan."""
    owner: str | None = None
    self_service: bool = False


@dataclass(frozen=True)
class Transition:
    """Returned by :meth:`ApprovalStore.decide` to the one caller that won (losers get an exception);
    ``request`` is the request right after the transition."""

    request: ApprovalRequest

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
