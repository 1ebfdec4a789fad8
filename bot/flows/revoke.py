"""`revoke`: the owner confirms their own token's revoke; anyone else's request goes to the approvers."""

from __future__ import annotations

from enum import StrEnum

from bot.approvals import (
    RequestDraft,
    RequestKind,
    RevokePlan,
)
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import Refused, RequestResult
from bot.flows.submit import ask_owner_or_approvers
from bot.governance.decisions import owns_token
from bot.governance.lookup import find_token
from bot.governance.models import FleetReport, TokenAssessment


class Origin(StrEnum):
    """Where a revoke was asked from; a button gives the request its reason when none was typed."""

    COMMAND = "command"
    HOME = "home"
    REMINDER = "reminder"
    ROTATION = "rotation"
    MIGRATION = "migration"


DEFAULT_REASONS = {
    Origin.COMMAND: "",
    Origin.HOME: "from patbot's Home tab",
    Origin.REMINDER: "from patbot's weekly reminder",
    Origin.ROTATION: "replaced by a new token (guided rotation)",
    Origin.MIGRATION: "replaced by an OAuth secret (migration)",
}


def revoke_plan(item: TokenAssessment, report: FleetReport) -> RevokePlan:
    """What the request shows about a token (no secrets: the API never returns values)."""
    token = item.token
    label = next((ws.workspace.label for ws in report.workspaces if ws.workspace.host == token.workspace), "")
    return RevokePlan(label, token.owner, token.comment, tuple(f.value for f in item.findings))


def request_revoke(
    deps: FlowDeps, actor: str, token_text: str, reason: str = "", origin: Origin = Origin.COMMAND
) -> RequestResult:
    """Revoke a token: `SelfConfirm` for its owner, `SentToApprovers` for anyone else, or `Refused`."""
    try:
        return _request_revoke(deps, actor, token_text, reason or DEFAULT_REASONS[origin])
    except GovernanceError as exc:
        return Refused.because(exc)


def _request_revoke(deps: FlowDeps, actor: str, token_text: str, reason: str) -> RequestResult:
    email = deps.people.email_of(actor)
    report = deps.audit()
    item = find_token(report, token_text)
    token = item.token
    draft = RequestDraft(
        RequestKind.REVOKE,
        token.token_id,
        token.workspace,
        actor,
        reason,
        revoke_plan(item, report),
        owner=token.owner,
    )
    return ask_owner_or_approvers(deps, draft, owner_confirms=owns_token(email, item))
