"""Who may decide what: pure functions returning a decision with its reason."""

from __future__ import annotations

from dataclasses import dataclass

from bot.approvals import ApprovalRequest, RequestState
from bot.governance.models import PrincipalType, TokenAssessment


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether an actor may take a decision, and why not."""

    allowed: bool
    reason: str = ""


def may_decide(
    request: ApprovalRequest, actor: str, decision: RequestState, *, actor_is_approver: bool
) -> Decision:
    """Four eyes: approvers decide others' requests, never their own; owners confirm their self-service."""
    if request.self_service:
        if actor != request.requester:
            return Decision(False, "Only the token's owner can confirm or cancel this.")
        if decision not in (RequestState.APPROVED, RequestState.CANCELLED):
            return Decision(False, "This confirmation can only be confirmed or cancelled.")
        return Decision(True)
    if decision is RequestState.CANCELLED:
        if actor != request.requester:
            return Decision(False, "Only the requester can cancel this request.")
        return Decision(True)
    if not actor_is_approver:
        return Decision(False, "Only approvers can approve or deny requests.")
    if actor == request.requester:
        return Decision(False, "You made this request; another approver has to decide it (four eyes).")
    return Decision(True)


def may_see_fleet(*, actor_is_approver: bool) -> Decision:
    """Approvers see the whole fleet, a user's or a workspace's tokens; everyone else their own."""
    if actor_is_approver:
        return Decision(True)
    return Decision(False, "Only approvers can see the fleet. `/pat audit` shows your own tokens.")


def may_see_policy(*, actor_is_approver: bool) -> Decision:
    """Workspace token policy is for approvers, to see and to ask to change."""
    if actor_is_approver:
        return Decision(True)
    return Decision(False, "Only approvers can see or change workspace token policy.")


def owns_token(email: str, item: TokenAssessment) -> bool:
    """The person with this e-mail owns the token themselves (a service principal's token has no such owner)."""
    return (
        item.token.owner.lower() == email.lower()
        and item.principal_type is not PrincipalType.SERVICE_PRINCIPAL
    )
