"""`policy`: approvers see each workspace's token posture and ask to change the maximum lifetime."""

from __future__ import annotations

from collections.abc import Sequence

from bot.approvals import PolicyPlan, RequestDraft, RequestKind
from bot.databricks import DatabricksError
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import PolicyView, Refused, RequestResult, SentToApprovers, WorkspacePosture
from bot.flows.submit import ask_approvers
from bot.governance.decisions import may_see_policy
from bot.provisioning import plan_policy


def policy_view(deps: FlowDeps, actor: str) -> PolicyView | Refused:
    """Token posture of every workspace; one unreadable workspace does not hide the others."""
    verdict = may_see_policy(actor_is_approver=deps.people.is_approver(actor))
    if not verdict.allowed:
        return Refused(verdict.reason)
    rows = []
    try:
        workspaces = deps.fleet.workspaces()
    except GovernanceError as exc:
        return Refused.because(exc)
    for ws in workspaces:
        try:
            rows.append(WorkspacePosture(ws, deps.fleet.gateway(ws).posture()))
        except DatabricksError as exc:
            rows.append(WorkspacePosture(ws, None, exc.user_message))
    return PolicyView(tuple(rows), deps.settings.max_lifetime_days)


def request_max_lifetime(deps: FlowDeps, actor: str, days: str, selectors: Sequence[str]) -> RequestResult:
    """Ask the approvers to set `maxTokenLifetimeDays` on the chosen workspaces (all when none)."""
    verdict = may_see_policy(actor_is_approver=deps.people.is_approver(actor))
    if not verdict.allowed:
        return Refused(verdict.reason)
    try:
        value, workspaces = plan_policy(deps.fleet, days, selectors)
        labels = ", ".join(ws.label for ws in workspaces)
        draft = RequestDraft(
            RequestKind.POLICY,
            "max-lifetime:" + ",".join(sorted(ws.host for ws in workspaces)),
            workspaces[0].host if len(workspaces) == 1 else "*",
            actor,
            "",
            PolicyPlan(value, tuple(ws.host for ws in workspaces), labels),
        )
        return SentToApprovers(ask_approvers(deps, draft))
    except GovernanceError as exc:
        return Refused.because(exc)
