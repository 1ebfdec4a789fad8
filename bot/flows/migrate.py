"""`migrate`: move a service principal from PATs to an OAuth secret, as Databricks recommends.

Planned and checked before any approver sees it: the principal (not a user), its live PATs, the secret's
lifetime (at most the maximum) and API scopes (the union of its PATs' scopes, never wider), and the two
secret keys its client ID and secret will go to. The approved request is carried out by
`Operations.execute`; the PATs stay until someone revokes them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.approvals import MigratePlan, RequestDraft, RequestKind
from bot.databricks import DatabricksError
from bot.errors import GovernanceError
from bot.fleet import Fleet
from bot.flows.create import rules_of
from bot.flows.deps import FlowDeps
from bot.flows.results import Refused, RequestResult, SentToApprovers
from bot.flows.submit import ask_approvers
from bot.governance.lifetime import describe
from bot.governance.migration import union_scopes
from bot.governance.models import Principal, Workspace
from bot.governance.scopes import is_full_access
from bot.provisioning import (
    ProvisioningRefused,
    Rules,
    find_service_principal,
    key_stem,
    require_secret_scope,
)
from bot.secret_keys import choose_key_pair, pair_keys

MAX_SECRET_LIFETIME_DAYS = 730
"""Databricks' longest OAuth secret lifetime."""


@dataclass(frozen=True, slots=True)
class MigrateAsk:
    """What `/pat migrate` asks for: a service principal (application ID or display name) and a workspace."""

    principal: str
    workspace: str | None = None


def oauth_key_stem(principal: Principal) -> str:
    """Secret keys named after the principal: `<display-name>-oauth-client-id` / `-oauth-secret`."""
    return key_stem(principal, 90) + "-oauth"


def plan_migrate(
    fleet: Fleet, ask: MigrateAsk, rules: Rules, now: datetime | None = None
) -> tuple[Workspace, MigratePlan]:
    """The workspace and the plan, with everything checked that can be before approval; raises
    `GovernanceError`s that say why not."""
    scope = require_secret_scope(rules.secret_scope, "Migrating to OAuth")
    workspace, sp = _principal(fleet, ask)
    gateway = fleet.gateway(workspace)
    moment = now or datetime.now(UTC)
    pats = sorted(
        (
            t
            for t in gateway.list_tokens()
            if str(t.owner_id) == sp.id and (t.expires is None or t.expires > moment)
        ),
        key=lambda t: (t.created, t.token_id),
    )
    if not pats:
        raise ProvisioningRefused(
            f"Service principal `{sp.display_name}` holds no live PATs in {workspace.label}: nothing to migrate "
            "(its OAuth secret's scopes are taken from its PATs)."
        )
    scopes = union_scopes(pats)
    lifetime = timedelta(days=min(rules.max_days, MAX_SECRET_LIFETIME_DAYS))
    client_id_key, secret_key = pair_keys(oauth_key_stem(sp))
    note = ""
    if rules.secret_keys is not None:
        try:
            pair = choose_key_pair(gateway, rules.secret_keys, scope, oauth_key_stem(sp))
            client_id_key, secret_key, note = pair.client_id_key, pair.secret_key, pair.note()
        except DatabricksError as exc:
            note = f"could not check which keys are free ({exc.user_message})"
    return workspace, MigratePlan(
        workspace_label=workspace.label,
        principal_id=sp.id,
        application_id=sp.name,
        principal=sp.display_name,
        lifetime_seconds=int(lifetime.total_seconds()),
        lifetime=describe(lifetime),
        scopes=tuple(s.text for s in scopes),
        full_access_from=tuple(t.short_id for t in pats if is_full_access(t.scopes)),
        secret_scope=scope,
        client_id_key=client_id_key,
        secret_key=secret_key,
        secret_key_note=note,
        pat_ids=tuple(t.token_id for t in pats),
        pat_comments=tuple(t.comment for t in pats),
        pat_last_used=tuple(t.last_used.isoformat() if t.last_used else "" for t in pats),
    )


def _principal(fleet: Fleet, ask: MigrateAsk) -> tuple[Workspace, Principal]:
    """The service principal asked for; a user, or nobody, is refused with a sentence saying so."""
    try:
        return find_service_principal(fleet, ask.principal, ask.workspace)
    except ProvisioningRefused:
        if _is_user(fleet, ask.principal, ask.workspace):
            raise ProvisioningRefused(
                f"`{ask.principal}` is a user, not a service principal: only service principals move to OAuth "
                "secrets (people sign in with OAuth themselves)."
            ) from None
        raise


def _is_user(fleet: Fleet, wanted: str, selector: str | None) -> bool:
    workspaces = fleet.select(selector) if selector else fleet.workspaces()
    low = wanted.lower()

    def look(ws: Workspace) -> bool:
        try:
            users = fleet.gateway(ws).users()
        except DatabricksError:
            return False
        return any(low in (u.name.lower(), u.display_name.lower()) for u in users)

    if not workspaces:
        return False
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(workspaces)))) as pool:
        return any(pool.map(look, workspaces))


def request_migrate(deps: FlowDeps, actor: str, ask: MigrateAsk) -> RequestResult:
    """Plan the migration and send it to the approvers (four eyes, even for approvers)."""
    try:
        workspace, plan = plan_migrate(deps.fleet, ask, rules_of(deps), deps.clock())
        subject = f"{plan.application_id}@{workspace.host}"
        draft = RequestDraft(RequestKind.MIGRATE, subject, workspace.host, actor, "", plan)
        return SentToApprovers(ask_approvers(deps, draft))
    except GovernanceError as exc:
        return Refused.because(exc)
