"""`scope`: change a token's API scopes in place. The owner narrowing their own token confirms it; anyone
else, and every widening, goes to the approvers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from bot.approvals import (
    ApprovalRequest,
    DuplicateRequest,
    RequestDraft,
    RequestKind,
    RequestState,
    ScopePlan,
)
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import Refused, RequestResult, SelfConfirm, SentToApprovers
from bot.flows.submit import PATBOT, ask_approvers
from bot.governance.findings import suggested_scopes, usage_known
from bot.governance.lookup import find_token
from bot.governance.models import FleetReport, PrincipalType, Token
from bot.governance.scopes import FULL_ACCESS, Scope, covers, validate_scopes


class ScopeRefused(GovernanceError):
    """A scope change that cannot be asked for, with the reason."""


@dataclass(frozen=True, slots=True)
class ScopeAsk:
    """What the requester asked for: a token (ID or prefix) and its new scopes as typed, or `suggested`
    (the scopes Databricks saw it use)."""

    token: str
    scopes: tuple[str, ...] = ()
    suggested: bool = False


def widens(old: Iterable[str | Scope], new: Iterable[str | Scope]) -> bool:
    """Whether `new` allows anything `old` did not; no scopes (or `all-apis`) is full access, the widest."""
    return not covers(tuple(old) or (FULL_ACCESS,), new)


def new_scopes(token: Token, ask: ScopeAsk) -> tuple[str, ...]:
    """The scopes asked for, as Databricks spells them; raises `ScopeRefused` / `InvalidScope` naming why."""
    if ask.suggested:
        if not usage_known(token):
            raise ScopeRefused(
                f"Databricks has not inferred yet which APIs token `{token.short_id}` uses, so there is "
                f"nothing to suggest. Name the scopes instead: `/pat scope {token.short_id} sql,jobs:read`."
            )
        chosen = suggested_scopes(token)
        if not chosen:
            raise ScopeRefused(
                f"Token `{token.short_id}` uses nothing its scopes allow, so narrowing it would leave it "
                "nothing; revoke it instead if it is not needed."
            )
    else:
        chosen = validate_scopes(ask.scopes)
    texts = tuple(s.text for s in chosen)
    if sorted(texts) == sorted(token.scopes):
        raise ScopeRefused(f"Token `{token.short_id}` already has exactly these scopes; nothing to change.")
    return texts


def request_scope(deps: FlowDeps, actor: str, ask: ScopeAsk, reason: str = "") -> RequestResult:
    """Change a token's scopes: `SelfConfirm` for its owner narrowing it, `SentToApprovers` for anyone else
    and for every widening, or `Refused` (unknown token or scope, nothing to suggest, nothing to change)."""
    try:
        return _request_scope(deps, actor, ask, reason)
    except GovernanceError as exc:
        return Refused.because(exc)


def _request_scope(deps: FlowDeps, actor: str, ask: ScopeAsk, reason: str) -> RequestResult:
    email = deps.people.email_of(actor)
    report = deps.audit()
    item = find_token(report, ask.token)
    token = item.token
    after = new_scopes(token, ask)
    widening = widens(token.scopes, after)
    plan = ScopePlan(
        workspace_label=workspace_label_of(report, token.workspace),
        owner_display=item.owner_display or token.owner,
        comment=token.comment,
        before=token.scopes,
        after=after,
        widening=widening,
    )
    draft = RequestDraft(
        RequestKind.SCOPE, token.token_id, token.workspace, actor, reason, plan, owner=token.owner
    )
    owns_it = token.owner.lower() == email and item.principal_type is not PrincipalType.SERVICE_PRINCIPAL
    if owns_it and not widening:
        return SelfConfirm(own_request(deps, replace(draft, self_service=True)))
    try:
        return SentToApprovers(ask_approvers(deps, draft))
    except DuplicateRequest as dup:
        # The owner's unconfirmed narrowing must not block a request for the approvers: withdraw it
        # (atomically: if the owner confirms first, this raises) and ask the approvers.
        if not dup.existing.self_service:
            raise
        deps.store.decide(dup.existing.id, RequestState.CANCELLED, PATBOT)
        return SentToApprovers(ask_approvers(deps, draft))


def own_request(deps: FlowDeps, draft: RequestDraft) -> ApprovalRequest:
    """The owner's confirmation; asking again for other scopes replaces an unconfirmed one."""
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


def workspace_label_of(report: FleetReport, host: str) -> str:
    """A workspace's label as the audit knows it, else its host."""
    return next((ws.workspace.label for ws in report.workspaces if ws.workspace.host == host), host)
