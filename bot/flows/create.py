"""`create`: a new token for a service principal, planned and checked before any approver sees it."""

from __future__ import annotations

from dataclasses import replace

from bot.approvals import RequestDraft, RequestKind
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import Refused, RequestResult, SentToApprovers
from bot.flows.submit import ask_approvers
from bot.governance.models import TokenAccess
from bot.governance.scopes import is_full_access, validate_scopes
from bot.provisioning import CreateAsk, ProvisioningRefused, Rules, plan_create

__all__ = ["CreateAsk", "access_of", "request_create", "rules_of"]


def rules_of(deps: FlowDeps) -> Rules:
    """The provisioning rules of the settings, with the store of which keys hold live tokens' values."""
    return Rules(deps.settings.max_lifetime_days, deps.settings.secret_scope, deps.executor.secret_keys)


def access_of(ask: CreateAsk, *, require_scopes: bool) -> TokenAccess:
    """The new token's scopes (checked against the catalogue) and autoscope; raises naming what is wrong.

    With `require_scopes`, a token with neither scopes nor autoscope (or with only full access) is refused.
    """
    scopes = tuple(s.text for s in validate_scopes(ask.scopes)) if ask.scopes else ()
    if require_scopes and not ask.autoscope and is_full_access(scopes):
        lead = "`all-apis` is full access, and new" if scopes else "New"
        raise ProvisioningRefused(
            f"{lead} tokens need API scopes (PATBOT_REQUIRE_SCOPES is on): add `scopes=sql,jobs:read` "
            "(the APIs the token needs) or `autoscope` (Databricks narrows it to what it uses), for example "
            f"`/pat create {ask.principal} {ask.lifetime} scopes=sql,jobs:read`."
        )
    return TokenAccess(scopes, True if ask.autoscope else None)


def request_create(deps: FlowDeps, actor: str, ask: CreateAsk) -> RequestResult:
    """Plan a new service-principal token and send it to the approvers (four eyes, even for approvers).

    Scope names and the scopes requirement are checked first, before Databricks is asked anything.
    """
    try:
        access = access_of(ask, require_scopes=deps.settings.require_scopes)
        plan = replace(plan_create(deps.fleet, ask, rules_of(deps)), access=access)
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
