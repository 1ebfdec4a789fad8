"""`create`: a new token for a service principal, planned and checked before any approver sees it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.approvals import RequestDraft, RequestKind
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import Refused, RequestResult, SentToApprovers
from bot.flows.submit import ask_approvers
from bot.provisioning import plan_create


@dataclass(frozen=True, slots=True)
class CreateAsk:
    """What the requester asked for: a principal (application ID or name), a lifetime such as `30d`, and
    the API scopes (as typed, checked by the flow) and whether Databricks should autoscope the token."""

    principal: str
    lifetime: str
    workspace: str | None = None
    comment: str = ""
    scopes: tuple[str, ...] = ()
    autoscope: bool = False


def request_create(deps: FlowDeps, actor: str, ask: CreateAsk) -> RequestResult:
    """Plan a new service-principal token and send it to the approvers (four eyes, even for approvers)."""
    settings = deps.settings
    try:
        plan = plan_create(
            deps.fleet,
            principal=ask.principal,
            lifetime_text=ask.lifetime,
            selector=ask.workspace,
            comment=ask.comment,
            max_days=settings.max_lifetime_days,
            secret_scope=settings.secret_scope,
            secret_keys=deps.executor.secret_keys,
        )
        draft = RequestDraft(
            RequestKind.CREATE,
            f"{plan.principal.name}@{plan.workspace.host}",
            plan.workspace.host,
            actor,
            ask.comment,
            plan.params(),
            plan.principal.name,
        )
        return SentToApprovers(ask_approvers(deps, draft))
    except GovernanceError as exc:
        return Refused.because(exc)
