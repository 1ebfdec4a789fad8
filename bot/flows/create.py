"""`create`: a new token for a service principal, planned and checked before any approver sees it."""

from __future__ import annotations

from bot.approvals import RequestDraft, RequestKind
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import Refused, RequestResult, SentToApprovers
from bot.flows.submit import ask_approvers
from bot.provisioning import CreateAsk, Rules, plan_create

__all__ = ["CreateAsk", "request_create", "rules_of"]


def rules_of(deps: FlowDeps) -> Rules:
    """The provisioning rules of the settings, with the store of which keys hold live tokens' values."""
    return Rules(deps.settings.max_lifetime_days, deps.settings.secret_scope, deps.executor.secret_keys)


def request_create(deps: FlowDeps, actor: str, ask: CreateAsk) -> RequestResult:
    """Plan a new service-principal token and send it to the approvers (four eyes, even for approvers)."""
    try:
        plan = plan_create(deps.fleet, ask, rules_of(deps))
        draft = RequestDraft(
            RequestKind.CREATE,
            f"{plan.principal.name}@{plan.workspace.host}",
            plan.workspace.host,
            actor,
            ask.comment,
            plan.stored(),
            plan.principal.name,
        )
        return SentToApprovers(ask_approvers(deps, draft))
    except GovernanceError as exc:
        return Refused.because(exc)
