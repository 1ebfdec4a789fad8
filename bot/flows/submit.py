"""Asking for a decision: the owner's own confirmation, or the approvers; never a request nobody can see."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.approvals import ApprovalRequest, DuplicateRequest, RequestDraft, RequestState
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import RequestResult, SelfConfirm, SentToApprovers

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


def ask_owner_or_approvers(deps: FlowDeps, draft: RequestDraft, *, owner_confirms: bool) -> RequestResult:
    """The owner's own confirmation (`SelfConfirm`) when they may act alone, else the approvers.

    An owner's unconfirmed confirmation must not block everyone else until it expires: asking the
    approvers withdraws it (atomically: if the owner confirms first, the withdrawal raises).
    """
    if owner_confirms:
        return SelfConfirm(_own_request(deps, replace(draft, self_service=True)))
    try:
        return SentToApprovers(ask_approvers(deps, draft))
    except DuplicateRequest as dup:
        if not dup.existing.self_service:
            raise
        deps.store.decide(dup.existing.id, RequestState.CANCELLED, PATBOT)
        return SentToApprovers(ask_approvers(deps, draft))


def _own_request(deps: FlowDeps, draft: RequestDraft) -> ApprovalRequest:
    """The owner's confirmation; asking again with another plan or reason replaces an unconfirmed one."""
    try:
        return deps.store.create(draft)
    except DuplicateRequest as dup:
        existing = dup.existing
        if existing.requester != draft.requester or not existing.self_service:
            raise
        if existing.plan == draft.plan and existing.reason == draft.reason:
            return existing
        deps.store.decide(existing.id, RequestState.CANCELLED, draft.requester)
        return deps.store.create(draft)
