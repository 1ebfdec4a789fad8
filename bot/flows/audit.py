"""`audit`: anyone sees their own tokens; approvers see the fleet, one user or one workspace."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import AuditResult, FleetAudit, NoDatabricksUser, OwnAudit, Refused
from bot.governance.decisions import may_see_fleet
from bot.report import to_csv


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """What to audit: `own`, `all`, a chat `user`, an `email`, or a `workspace` selector."""

    kind: str
    value: str = ""


def own_tokens(deps: FlowDeps, actor: str) -> OwnAudit | Refused:
    """The actor's own tokens across every governed workspace."""
    try:
        email = deps.people.email_of(actor)
        return OwnAudit(deps.audit(owner=email), email)
    except GovernanceError as exc:
        return Refused.because(exc)


def audit_for(deps: FlowDeps, actor: str, target: AuditTarget) -> AuditResult:
    """`/pat audit …`: own tokens for anyone; the fleet, a user or a workspace for approvers (with a CSV)."""
    if target.kind == "own":
        own = own_tokens(deps, actor)
        if isinstance(own, OwnAudit) and not own.report.tokens and own.report.owner_known() is False:
            return NoDatabricksUser(own.email, len(own.report.workspaces))
        return own
    verdict = may_see_fleet(actor_is_approver=deps.people.is_approver(actor))
    if not verdict.allowed:
        return Refused(verdict.reason)
    try:
        if target.kind == "all":
            report, label = deps.audit(), "all workspaces"
        elif target.kind == "user":
            email = deps.people.email_of(target.value)
            report, label = deps.audit(owner=email), email
        elif target.kind == "email":
            report, label = deps.audit(owner=target.value), target.value
        else:
            report, label = deps.audit(selectors=(target.value,)), target.value
    except GovernanceError as exc:
        return Refused.because(exc)
    csv_sent = deps.notifier.send_report(actor, to_csv(report), label)
    return FleetAudit(report, label, csv_sent)


def is_approver(deps: FlowDeps, actor: str) -> bool:
    """Whether the actor is an approver (help shows them the approver commands)."""
    return deps.people.is_approver(actor)
