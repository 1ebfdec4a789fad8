"""`rotate`: a service principal's token is replaced via approval; a user is guided to replace their own."""

from __future__ import annotations

from dataclasses import replace

from bot.approvals import RequestDraft, RequestKind
from bot.errors import GovernanceError
from bot.flows.create import rules_of
from bot.flows.deps import FlowDeps
from bot.flows.results import GuideSent, Refused, RequestResult, SentToApprovers
from bot.flows.submit import ask_approvers
from bot.governance.lookup import find_token
from bot.governance.models import PrincipalType, Token, TokenAccess
from bot.provisioning import plan_rotation

# Autoscope states that say autoscope is not on for the token (empty: Databricks never reported one).
AUTOSCOPE_OFF = frozenset({"AUTOSCOPE_STATE_DISABLED"})
AUTOSCOPE_UNKNOWN = frozenset({"", "AUTOSCOPE_STATE_NONE", "AUTOSCOPE_STATE_UNSPECIFIED"})


def kept_access(token: Token) -> TokenAccess:
    """What the replacement may call: exactly the old token's scopes (none stays full access, never more),
    and its autoscope setting (on when Databricks reports any autoscope state but disabled)."""
    state = token.autoscope_state
    if state in AUTOSCOPE_UNKNOWN:
        autoscope: bool | None = None  # Databricks' default, as the old token had
    else:
        autoscope = state not in AUTOSCOPE_OFF
    return TokenAccess(token.scopes, autoscope)


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
        plan = replace(plan_rotation(deps.fleet, item, rules_of(deps)), access=kept_access(token))
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
