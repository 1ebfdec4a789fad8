"""Planning create / rotate / policy requests before anyone approves them (no Slack, no side effects)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from bot.approvals.plans import TokenPlan
from bot.databricks import DatabricksError
from bot.errors import GovernanceError, UnknownWorkspace
from bot.fleet import Fleet
from bot.governance.lifetime import check_lifetime, describe, parse_lifetime, policy_lifetime
from bot.governance.models import Principal, TokenAccess, TokenAssessment, Workspace
from bot.secret_keys import SecretKeys, choose_key

MAX_POLICY_DAYS = 730


class ProvisioningRefused(GovernanceError):
    """A create / rotate / policy request that cannot be made, with the reason."""


def require_secret_scope(scope: str | None, what: str = "Creating and rotating tokens") -> str:
    """The secret scope, or a refusal made before any Databricks call."""
    if not scope:
        raise ProvisioningRefused(
            f"{what} is switched off: PATBOT_SECRET_SCOPE is not set, and a new credential's value "
            "must go to a Databricks secret scope, never to Slack."
        )
    return scope


def key_stem(principal: Principal, limit: int = 120) -> str:
    """A secret key's stem named after the principal: its display name, made safe, else its application ID."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", principal.display_name).strip("-.").lower()
    return (slug or principal.name)[:limit]


def secret_key_for(principal: Principal) -> str:
    """The key of a principal's token value: `<display-name>-token`."""
    return key_stem(principal) + "-token"


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """A new token for a service principal, ready to be approved."""

    workspace: Workspace
    principal: Principal
    lifetime: timedelta
    comment: str
    secret_scope: str
    secret_key: str
    """The key the value will be written to: one holding no live token's value now (when checked)."""
    secret_key_note: str = ""
    """Why `secret_key` is not the usual key, e.g. "etl-token holds the value of live token 3f2a…"."""

    access: TokenAccess = field(default_factory=TokenAccess)
    """API scopes and autoscope of the new token."""

    def stored(self) -> TokenPlan:
        """What the request stores (no secrets exist yet)."""
        return TokenPlan(
            workspace_label=self.workspace.label,
            application_id=self.principal.name,
            principal=self.principal.display_name,
            lifetime_seconds=int(self.lifetime.total_seconds()),
            lifetime=describe(self.lifetime),
            comment=self.comment,
            secret_scope=self.secret_scope,
            secret_key=self.secret_key,
            secret_key_note=self.secret_key_note,
            scopes=self.access.scopes,
            autoscope=self.access.autoscope,
        )


@dataclass(frozen=True, slots=True)
class CreateAsk:
    """What a requester asked for: a principal (application ID or name), a lifetime such as `30d`, and the
    API scopes as typed (the create flow checks them) and whether Databricks should autoscope the token."""

    principal: str
    lifetime: str
    workspace: str | None = None
    comment: str = ""
    scopes: tuple[str, ...] = ()
    autoscope: bool = False


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings every token plan follows, and (when known) which secret keys hold live tokens."""

    max_days: int
    secret_scope: str | None
    secret_keys: SecretKeys | None = None


def _matches(principal: Principal, wanted: str) -> bool:
    return wanted.lower() in {principal.name.lower(), principal.display_name.lower()}


def find_service_principal(
    fleet: Fleet, wanted: str, selector: str | None, *, max_workers: int = 16
) -> tuple[Workspace, Principal]:
    """The service principal by application ID or display name, in the one workspace it lives in."""
    workspaces = fleet.select(selector) if selector else fleet.workspaces()
    if selector and not workspaces:
        raise UnknownWorkspace(f"No governed workspace matches {selector!r}.")

    def look(ws: Workspace) -> tuple[Workspace, list[Principal] | None, str | None]:
        try:
            found = [p for p in fleet.gateway(ws).service_principals() if _matches(p, wanted)]
        except DatabricksError as exc:
            return ws, None, exc.user_message
        return ws, found, None

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(workspaces)))) as pool:
        results = list(pool.map(look, workspaces))
    hits = [(ws, found) for ws, found, _ in results if found]
    errors = [f"{ws.label}: {err}" for ws, _, err in results if err]
    if not hits:
        note = f" (could not search: {'; '.join(errors)})" if errors else ""
        raise ProvisioningRefused(f"No service principal `{wanted}` in the governed workspaces{note}.")
    if len(hits) > 1:
        names = ", ".join(ws.label for ws, _ in hits)
        raise ProvisioningRefused(
            f"`{wanted}` exists in several workspaces ({names}); add `workspace=<name>` to choose one."
        )
    workspace, found = hits[0]
    if len({p.name for p in found}) > 1:
        ids = ", ".join(p.name for p in found)
        raise ProvisioningRefused(
            f"Several service principals are called `{wanted}` in {workspace.label}; "
            f"use the application ID ({ids})."
        )
    principal = found[0]
    if not principal.active:
        raise ProvisioningRefused(f"Service principal `{wanted}` is deactivated in {workspace.label}.")
    return workspace, principal


def plan_create(fleet: Fleet, ask: CreateAsk, rules: Rules) -> CreatePlan:
    """Check everything that can be checked before approval: scope, lifetime, principal, workspace policy.

    With `rules.secret_keys`, the plan names the key that holds no live token's value (the principal's usual
    key, else the next free `-2`, `-3`, …); the execution checks again.
    """
    scope = require_secret_scope(rules.secret_scope)
    lifetime = parse_lifetime(ask.lifetime)
    check_lifetime(lifetime, rules.max_days, MAX_POLICY_DAYS, "the workspace")
    workspace, sp = find_service_principal(fleet, ask.principal, ask.workspace)
    posture = fleet.gateway(workspace).posture()
    if not posture.tokens_enabled:
        raise ProvisioningRefused(f"Personal access tokens are disabled in {workspace.label}.")
    check_lifetime(lifetime, rules.max_days, posture.max_token_lifetime_days, workspace.label)
    key, note = _free_key(fleet, workspace, rules.secret_keys, scope, secret_key_for(sp), None)
    comment = ask.comment or f"created by patbot for {sp.display_name}"
    return CreatePlan(workspace, sp, lifetime, comment, scope, key, note)


def _free_key(
    fleet: Fleet,
    workspace: Workspace,
    secret_keys: SecretKeys | None,
    scope: str,
    wanted: str,
    replacing: str | None,
) -> tuple[str, str]:
    """The key to plan with and why it is not `wanted` (unchecked without `secret_keys`)."""
    if secret_keys is None:
        return wanted, ""
    try:
        choice = choose_key(fleet.gateway(workspace), secret_keys, scope, wanted, replacing=replacing)
    except DatabricksError as exc:
        return wanted, f"could not check which keys are free ({exc.user_message})"
    return choice.key, choice.note()


def plan_rotation(fleet: Fleet, item: TokenAssessment, rules: Rules) -> CreatePlan:
    """The replacement of a service principal's token: same comment, the policy lifetime, the same key
    (the one it was created with, when `rules.secret_keys` knows it)."""
    scope = require_secret_scope(rules.secret_scope)
    workspace = fleet.by_host(item.token.workspace)
    principals = {p.id: p for p in fleet.gateway(workspace).service_principals()}
    sp = principals.get(str(item.token.owner_id)) if item.token.owner_id is not None else None
    if sp is None:
        raise ProvisioningRefused(
            f"Token `{item.token.short_id}` does not belong to a service principal of {workspace.label}."
        )
    posture = fleet.gateway(workspace).posture()
    lifetime = policy_lifetime(rules.max_days, posture.max_token_lifetime_days)
    known_key = rules.secret_keys.lookup(item.token.token_id) if rules.secret_keys else None
    key_scope, _, key = (known_key or "").partition("/")
    if not key or key_scope != scope:
        key = secret_key_for(sp)
    key, note = _free_key(fleet, workspace, rules.secret_keys, scope, key, item.token.token_id)
    return CreatePlan(workspace, sp, lifetime, item.token.comment, scope, key, note)


def plan_policy(fleet: Fleet, days_text: str, selectors: Sequence[str]) -> tuple[int, list[Workspace]]:
    """`maxTokenLifetimeDays` to set, and the workspaces (all when no selector)."""
    if not days_text.isdigit() or not 1 <= int(days_text) <= MAX_POLICY_DAYS:
        raise ProvisioningRefused(f"max-lifetime takes a number of days from 1 to {MAX_POLICY_DAYS}.")
    workspaces: list[Workspace] = []
    for selector in selectors:
        matches = fleet.select(selector)
        if not matches:
            raise UnknownWorkspace(f"No governed workspace matches {selector!r}.")
        workspaces.extend(m for m in matches if m not in workspaces)
    return int(days_text), workspaces or fleet.workspaces()
