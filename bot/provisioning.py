"""Planning create / rotate / policy requests before anyone approves them (no Slack, no side effects)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from bot.databricks import DatabricksError
from bot.errors import GovernanceError, UnknownWorkspace
from bot.fleet import Fleet
from bot.governance.lifetime import check_lifetime, describe, parse_lifetime, policy_lifetime
from bot.governance.models import Principal, TokenAssessment, Workspace
from bot.secret_keys import SecretKeys, choose_key

MAX_POLICY_DAYS = 730


class ProvisioningRefused(GovernanceError):
    """A create / rotate / policy request that cannot be made, with the reason."""


def require_secret_scope(scope: str | None) -> str:
    """The secret scope, or a refusal made before any Databricks call."""
    if not scope:
        raise ProvisioningRefused(
            "Creating and rotating tokens is switched off: PATBOT_SECRET_SCOPE is not set, and a new "
            "token's value must go to a Databricks secret scope, never to Slack."
        )
    return scope


def secret_key_for(principal: Principal) -> str:
    """A secret key named after the principal: its display name, made safe, else its application ID."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", principal.display_name).strip("-.").lower()
    return (slug or principal.name)[:120] + "-token"


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

    def params(self) -> dict[str, str]:
        """What the request stores (no secrets exist yet)."""
        return {
            "workspace_label": self.workspace.label,
            "application_id": self.principal.name,
            "principal": self.principal.display_name,
            "lifetime_seconds": str(int(self.lifetime.total_seconds())),
            "lifetime": describe(self.lifetime),
            "comment": self.comment,
            "secret_scope": self.secret_scope,
            "secret_key": self.secret_key,
            "secret_key_note": self.secret_key_note,
        }


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


def plan_create(
    fleet: Fleet,
    *,
    principal: str,
    lifetime_text: str,
    selector: str | None,
    comment: str,
    max_days: int,
    secret_scope: str | None,
    secret_keys: SecretKeys | None = None,
) -> CreatePlan:
    """Check everything that can be checked before approval: scope, lifetime, principal, workspace policy.

    With `secret_keys`, the plan names the key that holds no live token's value (the principal's usual key,
    else the next free `-2`, `-3`, …); the execution checks again.
    """
    scope = require_secret_scope(secret_scope)
    lifetime = parse_lifetime(lifetime_text)
    check_lifetime(lifetime, max_days, MAX_POLICY_DAYS, "the workspace")
    workspace, sp = find_service_principal(fleet, principal, selector)
    posture = fleet.gateway(workspace).posture()
    if not posture.tokens_enabled:
        raise ProvisioningRefused(f"Personal access tokens are disabled in {workspace.label}.")
    check_lifetime(lifetime, max_days, posture.max_token_lifetime_days, workspace.label)
    key, note = _free_key(fleet, workspace, secret_keys, scope, secret_key_for(sp), None)
    return CreatePlan(
        workspace, sp, lifetime, comment or f"created by patbot for {sp.display_name}", scope, key, note
    )


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


def plan_rotation(
    fleet: Fleet,
    item: TokenAssessment,
    *,
    max_days: int,
    secret_scope: str | None,
    known_key: str | None,
    secret_keys: SecretKeys | None = None,
) -> CreatePlan:
    """The replacement of a service principal's token: same comment, the policy lifetime, the same key."""
    scope = require_secret_scope(secret_scope)
    workspace = fleet.by_host(item.token.workspace)
    principals = {p.id: p for p in fleet.gateway(workspace).service_principals()}
    sp = principals.get(str(item.token.owner_id)) if item.token.owner_id is not None else None
    if sp is None:
        raise ProvisioningRefused(
            f"Token `{item.token.short_id}` does not belong to a service principal of {workspace.label}."
        )
    posture = fleet.gateway(workspace).posture()
    lifetime = policy_lifetime(max_days, posture.max_token_lifetime_days)
    key_scope, _, key = (known_key or "").partition("/")
    if not key or key_scope != scope:
        key = secret_key_for(sp)
    key, note = _free_key(fleet, workspace, secret_keys, scope, key, item.token.token_id)
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
