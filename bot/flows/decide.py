"""`decide`: an Approve / Deny / Confirm / Cancel click. Check who may, claim it once, act, tell people."""

from __future__ import annotations

import logging

from bot.approvals import AlreadyDecided, ApprovalRequest, RequestExpired, RequestState
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import Decided, DecisionResult, NotAllowed
from bot.governance.decisions import may_decide

log = logging.getLogger(__name__)


def decide(deps: FlowDeps, request_id: str, actor: str, decision: RequestState) -> DecisionResult:
    """Decide a request: exactly one click wins; an approval is carried out exactly once."""
    try:
        request = deps.store.get(request_id)
        is_approver = False if request.self_service else deps.people.is_approver(actor)
        verdict = may_decide(request, actor, decision, actor_is_approver=is_approver)
        if not verdict.allowed:
            return NotAllowed(verdict.reason)
        request = deps.store.decide(request_id, decision, actor).request
    except RequestExpired as exc:
        if exc.transitioned:
            deps.notifier.show_outcome(exc.request)
        return NotAllowed(exc.user_message)
    except (AlreadyDecided, GovernanceError) as exc:
        return NotAllowed(exc.user_message)
    if request.state is RequestState.APPROVED:
        request = deps.executor.execute(request)
    if not request.self_service:
        deps.notifier.show_outcome(request)
        tell_people(deps, request)
    return Decided(request)


def tell_people(deps: FlowDeps, request: ApprovalRequest) -> None:
    """The requester hears of every decision; the token's owner of an approval (once, if not the requester)."""
    deps.notifier.tell_decision(request.requester, request, to_owner=False)
    if request.state is not RequestState.APPROVED or not request.owner or "@" not in request.owner:
        return
    owner_id = deps.people.user_for_email(request.owner)
    if owner_id and owner_id != request.requester:
        deps.notifier.tell_decision(owner_id, request, to_owner=True)


def sweep_expired(deps: FlowDeps) -> int:
    """Expire overdue requests and show their outcome to the approvers; returns how many expired."""
    expired = deps.store.expire_due()
    for request in expired:
        deps.notifier.show_outcome(request)
    return len(expired)
