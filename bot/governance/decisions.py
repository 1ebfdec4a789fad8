"""Who may decide what: pure functions returning a decision with its reason."""

from __future__ import annotations

from dataclasses import dataclass

from bot.approvals import ApprovalRequest, RequestState

SELF_SERVICE = "self"  # params flag: the owner revoking their own token (no approver needed)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether an actor may take a decision, and why not."""

    allowed: bool
    reason: str = ""


def may_decide(
    request: ApprovalRequest, actor: str, decision: RequestState, *, actor_is_approver: bool
) -> Decision:
    """Four eyes: approvers decide others' requests, never their own; owners confirm their self-service."""
    self_service = request.params.get(SELF_SERVICE) == "1"
    if self_service:
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
