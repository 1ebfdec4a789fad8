"""Asking the approvers: store the request, show it to them, and never leave one nobody can see."""

from __future__ import annotations

import logging

from bot.approvals import ApprovalRequest, RequestDraft, RequestState
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps

log = logging.getLogger(__name__)

PATBOT = "patbot"  # the actor of decisions patbot takes itself (withdrawals, unpostable requests)


def ask_approvers(deps: FlowDeps, draft: RequestDraft) -> ApprovalRequest:
    """Store a request and post it to the approvers; a request that cannot be posted is cancelled again."""
    request = deps.store.create(draft)
    try:
        channel, ts = deps.notifier.post_request(request)
        return deps.store.attach_message(request.id, channel, ts)
    except Exception:
        try:
            deps.store.decide(request.id, RequestState.CANCELLED, PATBOT)
        except GovernanceError:
            log.warning("could not cancel unposted request %s", request.id)
        raise
