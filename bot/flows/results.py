"""The typed answers of the flows; each surface renders them its own way."""

from __future__ import annotations

from dataclasses import dataclass

from bot.approvals import ApprovalRequest
from bot.errors import GovernanceError
from bot.governance.models import FleetReport, Posture, Token, Workspace


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing was done; `reason` says why (safe to show). `error` is the failure behind it, if any."""

    reason: str
    error: GovernanceError | None = None

    @classmethod
    def because(cls, error: GovernanceError) -> Refused:
        """A refusal carrying the error's own message."""
        return cls(error.user_message, error)


@dataclass(frozen=True, slots=True)
class SelfConfirm:
    """The owner's own revoke: waits for the owner to confirm it (no approver)."""

    request: ApprovalRequest


@dataclass(frozen=True, slots=True)
class SentToApprovers:
    """The request was stored and shown to the approvers."""

    request: ApprovalRequest


@dataclass(frozen=True, slots=True)
class GuideSent:
    """A user's own token: its owner was sent the steps to replace it (`to_self`: the owner asked)."""

    token: Token
    to_self: bool


RequestResult = SelfConfirm | SentToApprovers | GuideSent | Refused


@dataclass(frozen=True, slots=True)
class Decided:
    """This click decided the request; `request` carries the outcome (when approved, what was done)."""

    request: ApprovalRequest


@dataclass(frozen=True, slots=True)
class NotAllowed:
    """This click changed nothing: not allowed, already decided, expired or unknown."""

    reason: str


DecisionResult = Decided | NotAllowed


@dataclass(frozen=True, slots=True)
class OwnAudit:
    """A person's own tokens."""

    report: FleetReport
    email: str


@dataclass(frozen=True, slots=True)
class NoDatabricksUser:
    """Nobody with this e-mail exists in any governed workspace."""

    email: str
    workspaces: int


@dataclass(frozen=True, slots=True)
class FleetAudit:
    """An approver's view of the fleet (or one user or workspace), and whether the CSV reached them."""

    report: FleetReport
    label: str
    csv_sent: bool


AuditResult = OwnAudit | NoDatabricksUser | FleetAudit | Refused


@dataclass(frozen=True, slots=True)
class WorkspacePosture:
    """One workspace's token settings, or why they could not be read."""

    workspace: Workspace
    posture: Posture | None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class PolicyView:
    """Token posture of every workspace, against patbot's maximum lifetime."""

    workspaces: tuple[WorkspacePosture, ...]
    max_lifetime_days: int
