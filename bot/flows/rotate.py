"""`rotate`: a service principal's token is replaced via approval; a user is guided to replace their own."""

from __future__ import annotations

from bot.approvals import RequestDraft, RequestKind
from bot.errors import GovernanceError
from bot.flows.create import rules_of
from bot.flows.deps import FlowDeps
from bot.flows.results import GuideSent, Refused, RequestResult, SentToApprovers
from bot.flows.submit import ask_approvers
from bot.governance.lookup import find_token
from bot.governance.models import PrincipalType
from bot.provisioning import plan_rotation


def request_rotate(deps: FlowDeps, actor: str, token_text: str, reason: str = "") -> RequestResult:
    """Rotate a token: `SentToApprovers` (service principal), `GuideSent` (user) or `Refused`."""
    try:
        item = find_token(deps.audit(), token_text)
        token = item.token
        if item.principal_type is not PrincipalType.SERVICE_PRINCIPAL:
            owner_id = deps.people.user_for_email(token.owner)
            if owner_id is None:
                return Refused(
                    f"Token `{token.short_id}` belongs to {token.owner}, who is not in this Slack "
                    "workspace, so I cannot guide them through the rotation."
                )
            max_days = deps.settings.max_lifetime_days
            deps.notifier.guide_rotation(owner_id, token, requester=actor, max_days=max_days)
            return GuideSent(token, to_self=owner_id == actor)
        plan = plan_rotation(deps.fleet, item, rules_of(deps))
        draft = RequestDraft(
            RequestKind.ROTATE,
            token.token_id,
            token.workspace,
            actor,
            reason,
            plan.stored(),
            plan.principal.name,
        )
        return SentToApprovers(ask_approvers(deps, draft))
    except GovernanceError as exc:
        return Refused.because(exc)
