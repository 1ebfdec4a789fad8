"""`scope`: change a token's API scopes in place. The owner narrowing their own token confirms it; anyone
else, and every widening, goes to the approvers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.approvals import (
    RequestDraft,
    RequestKind,
    ScopePlan,
)
from bot.errors import GovernanceError
from bot.flows.deps import FlowDeps
from bot.flows.results import Refused, RequestResult
from bot.flows.submit import ask_owner_or_approvers
from bot.governance.decisions import owns_token
from bot.governance.findings import suggested_scopes, usage_known
from bot.governance.lookup import find_token
from bot.governance.models import FleetReport, Token
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
    owner_confirms = owns_token(email, item) and not widening
    return ask_owner_or_approvers(deps, draft, owner_confirms=owner_confirms)


def workspace_label_of(report: FleetReport, host: str) -> str:
    """A workspace's label as the audit knows it, else its host."""
    return next((ws.workspace.label for ws in report.workspaces if ws.workspace.host == host), host)
