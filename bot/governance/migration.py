"""Service principals moving from PATs to OAuth secrets: where each stands, and its secrets' findings.

Databricks recommends OAuth machine-to-machine authentication for service principals. A principal's state
in a workspace is judged from its PATs there (live ones: not expired) and its OAuth secrets there (secrets
made through the workspace's service-principal secrets API work in that workspace):

- ``pat_only``: live PATs, no live OAuth secret;
- ``pats_in_use``: migrated (a live OAuth secret) but a PAT was used after the day of the migration;
- ``pats_unused``: migrated, and no PAT used since (``last_used_day`` is a day: a use on the migration day
  itself may have come before the switch, so it does not count);
- ``pat_free``: no live PAT left.

The migration day is the creation day of the principal's oldest live secret. A ``pats_unused`` principal
whose migration is at least `stale_days` old is proposed for PAT revocation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from bot.governance.models import Finding, FleetReport, Policy, Principal, Token, TokenAssessment
from bot.governance.scopes import FULL_ACCESS, Scope, intersect, is_full_access


class MigrationState(StrEnum):
    """Where a service principal stands in its move from PATs to OAuth (in one workspace)."""

    PAT_ONLY = "pat_only"
    PATS_IN_USE = "pats_in_use"
    PATS_UNUSED = "pats_unused"
    PAT_FREE = "pat_free"


STATE_LABELS: Mapping[MigrationState, str] = {
    MigrationState.PAT_ONLY: "PATs only",
    MigrationState.PATS_IN_USE: "migrated, PATs still used",
    MigrationState.PATS_UNUSED: "migrated, PATs unused since",
    MigrationState.PAT_FREE: "PAT-free",
}


@dataclass(frozen=True, slots=True)
class OAuthSecret:
    """An OAuth secret of a service principal, as the secrets API lists it (never its value)."""

    secret_id: str
    principal_id: str
    """The principal's numeric SCIM id."""
    workspace: str
    """Host of the workspace whose secrets API made it."""
    created: datetime
    expires: datetime | None
    scopes: tuple[str, ...] = ()
    """Empty: unrestricted (all APIs)."""
    status: str = ""

    @property
    def short_id(self) -> str:
        """The first 12 characters of the ID, as shown to users."""
        return self.secret_id[:12]

    def live(self, now: datetime) -> bool:
        """Not expired and not marked otherwise than active."""
        return self.status in ("", "ACTIVE") and (self.expires is None or self.expires > now)


@dataclass(frozen=True, slots=True)
class SecretAssessment:
    """An OAuth secret with the lifetime findings that apply to it."""

    secret: OAuthSecret
    findings: tuple[Finding, ...]


def secret_findings(secret: OAuthSecret, policy: Policy, now: datetime) -> tuple[Finding, ...]:
    """`expired`, `expiring_soon` and `long_lived`, by the token rules; a secret without expiry gets none."""
    expires = secret.expires
    if expires is None:
        return ()
    out: list[Finding] = []
    if expires <= now:
        out.append(Finding.EXPIRED)
    elif (expires.astimezone(UTC).date() - now.astimezone(UTC).date()).days <= policy.expiring_soon_days:
        out.append(Finding.EXPIRING_SOON)
    if expires - secret.created > timedelta(days=policy.max_lifetime_days):
        out.append(Finding.LONG_LIVED)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Standing:
    """The pure verdict on one principal: its state, migration day and whether to propose revoking PATs."""

    state: MigrationState
    migrated_on: date | None = None
    pats_last_used: date | None = None
    """The latest use of any live PAT, if any was used."""
    propose_revocation: bool = False


def standing(
    pats: Sequence[Token], secrets: Sequence[OAuthSecret], now: datetime, stale_days: int
) -> Standing | None:
    """Where a principal stands, from its PATs and OAuth secrets; None when it holds neither (live or not)."""
    if not pats and not secrets:
        return None
    live_pats = [t for t in pats if t.expires is None or t.expires > now]
    live_secrets = [s for s in secrets if s.live(now)]
    used = [t.last_used for t in live_pats if t.last_used is not None]
    last_used = max(used) if used else None
    migrated_on = min(s.created.astimezone(UTC).date() for s in live_secrets) if live_secrets else None
    if not live_pats:
        return Standing(MigrationState.PAT_FREE, migrated_on, last_used)
    if migrated_on is None:
        return Standing(MigrationState.PAT_ONLY, None, last_used)
    if last_used is not None and last_used > migrated_on:
        return Standing(MigrationState.PATS_IN_USE, migrated_on, last_used)
    quiet_days = (now.astimezone(UTC).date() - migrated_on).days
    return Standing(MigrationState.PATS_UNUSED, migrated_on, last_used, quiet_days >= stale_days)


@dataclass(frozen=True, slots=True)
class PrincipalMigration:
    """One service principal in one workspace: its standing, its PATs and its OAuth secrets."""

    workspace: str
    """Workspace label."""
    principal: Principal
    standing: Standing
    pats: tuple[TokenAssessment, ...]
    secrets: tuple[SecretAssessment, ...]

    @property
    def state(self) -> MigrationState:
        """Shortcut to the standing's state."""
        return self.standing.state


def assess_migrations(
    workspace: str,
    service_principals: Iterable[Principal],
    tokens: Sequence[TokenAssessment],
    secrets: Mapping[str, Sequence[OAuthSecret]],
    policy: Policy,
    now: datetime,
) -> list[PrincipalMigration]:
    """Every service principal of a workspace that holds a PAT or an OAuth secret, by display name."""
    by_owner: dict[str, list[TokenAssessment]] = {}
    for item in tokens:
        if item.token.owner_id is not None:
            by_owner.setdefault(str(item.token.owner_id), []).append(item)
    out = []
    for sp in service_principals:
        pats = by_owner.get(sp.id, [])
        owned = list(secrets.get(sp.id, ()))
        verdict = standing([p.token for p in pats], owned, now, policy.stale_days)
        if verdict is None:
            continue
        assessed = tuple(SecretAssessment(s, secret_findings(s, policy, now)) for s in owned)
        out.append(PrincipalMigration(workspace, sp, verdict, tuple(pats), assessed))
    out.sort(key=lambda m: (m.principal.display_name.lower(), m.principal.id))
    return out


def count_states(migrations: Iterable[PrincipalMigration]) -> dict[MigrationState, int]:
    """How many principals stand in each state (every state present, in order)."""
    counts = dict.fromkeys(MigrationState, 0)
    for m in migrations:
        counts[m.state] += 1
    return counts


def union_scopes(pats: Iterable[Token]) -> tuple[Scope, ...]:
    """The union of the PATs' API scopes, as scopes; ``all-apis`` alone when any PAT has full access."""
    texts: list[str] = []
    for token in pats:
        if is_full_access(token.scopes):
            return (Scope(FULL_ACCESS),)
        texts.extend(token.scopes)
    # A list intersected with itself comes back merged: `jobs` and `jobs:read` become `jobs`.
    return intersect(texts, texts) if texts else ()


def fleet_migrations(report: FleetReport) -> list[PrincipalMigration] | None:
    """Every workspace's migrations, or None when no workspace's OAuth secrets were read."""
    read = [ws.migrations for ws in report.workspaces if ws.migrations is not None]
    if not read:
        return None
    return [m for migrations in read for m in migrations]


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """The fleet's move to OAuth for the weekly summary: principals per state, last week's, and proposals."""

    counts: Mapping[MigrationState, int]
    previous: Mapping[MigrationState, int] | None
    proposals: tuple[PrincipalMigration, ...]
    """Migrated principals whose PATs have not been used for the stale period since: revoke them."""


def migration_progress(
    migrations: Sequence[PrincipalMigration], previous: Mapping[MigrationState, int] | None
) -> MigrationProgress:
    """Counts per state and the principals proposed for PAT revocation."""
    proposals = tuple(m for m in migrations if m.standing.propose_revocation)
    return MigrationProgress(count_states(migrations), previous, proposals)
