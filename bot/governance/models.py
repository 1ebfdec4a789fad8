"""Strict domain records for tokens, principals, workspaces and what the audit found."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.governance.migration import PrincipalMigration


class Finding(StrEnum):
    """A governance finding; one token can have several."""

    NON_EXPIRING = "non_expiring"
    EXPIRED = "expired"
    STALE = "stale"
    LONG_LIVED = "long_lived"
    UNROTATED = "unrotated"
    ORPHANED = "orphaned"
    EXPIRING_SOON = "expiring_soon"
    UNSCOPED = "unscoped"
    OVERSCOPED = "overscoped"
    MINTS_TOKENS = "mints_tokens"


# Worst first: the order used to rank tokens and to list findings.
FINDING_SEVERITY: dict[Finding, int] = {
    Finding.ORPHANED: 60,
    Finding.NON_EXPIRING: 50,
    Finding.STALE: 40,
    Finding.LONG_LIVED: 30,
    Finding.MINTS_TOKENS: 25,
    Finding.UNROTATED: 20,
    Finding.EXPIRING_SOON: 10,
    Finding.EXPIRED: 5,
    Finding.OVERSCOPED: 2,
    Finding.UNSCOPED: 1,
}


class PrincipalType(StrEnum):
    """Who owns a token."""

    USER = "user"
    SERVICE_PRINCIPAL = "service_principal"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Workspace:
    """A Databricks workspace patbot governs."""

    host: str
    workspace_id: int | None = None
    name: str = ""

    @property
    def label(self) -> str:
        """A short human name: the workspace name, else the host without scheme."""
        return self.name or self.host.split("://", 1)[-1]


@dataclass(frozen=True, slots=True)
class Token:
    """A personal access token as listed by token management (never its value)."""

    token_id: str
    workspace: str
    owner: str
    owner_id: int | None
    comment: str
    created: datetime
    expires: datetime | None
    last_used: date | None
    scopes: tuple[str, ...] = ()
    autoscope_state: str = ""  # Databricks' AutoscopeState value, e.g. "AUTOSCOPE_STATE_COMPLETED"
    inferred_scopes: tuple[str, ...] = ()  # what autoscope saw the token call
    backfill_scopes: tuple[str, ...] = ()  # what Databricks inferred from past logs

    @property
    def short_id(self) -> str:
        """The first 12 characters of the ID, as shown to users."""
        return self.token_id[:12]

    @property
    def used_scopes(self) -> tuple[str, ...]:
        """The scopes Databricks saw the token use: `inferred_scopes`, else `backfill_scopes`."""
        return self.inferred_scopes or self.backfill_scopes


@dataclass(frozen=True, slots=True)
class TokenAccess:
    """What a new token may call: API scopes (empty: full access) and autoscope (None: Databricks' default)."""

    scopes: tuple[str, ...] = ()
    autoscope: bool | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """A SCIM user or service principal of a workspace."""

    id: str
    name: str
    display_name: str
    type: PrincipalType
    active: bool


class GranteeKind(StrEnum):
    """Who a token permission is granted to."""

    GROUP = "group"
    USER = "user"
    SERVICE_PRINCIPAL = "service_principal"


EVERYONE_GROUP = "users"  # the workspace group every user belongs to


@dataclass(frozen=True, slots=True)
class TokenUser:
    """A group, user or service principal allowed to create and use tokens (`CAN_USE` or more)."""

    kind: GranteeKind
    name: str
    permission: str = "CAN_USE"
    display_name: str = ""

    @property
    def everyone(self) -> bool:
        """The `users` group: every user of the workspace."""
        return self.kind is GranteeKind.GROUP and self.name == EVERYONE_GROUP


@dataclass(frozen=True, slots=True)
class Posture:
    """A workspace's token settings, and who may use tokens (None when that could not be read)."""

    tokens_enabled: bool
    max_token_lifetime_days: int
    max_lifetime_set: bool
    token_users: tuple[TokenUser, ...] | None = None

    @property
    def everyone_may_use_tokens(self) -> bool:
        """Whether the `users` group (everyone) holds `CAN_USE` on tokens."""
        return any(u.everyone for u in self.token_users or ())


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds the findings are judged against."""

    stale_days: int = 30
    max_lifetime_days: int = 90
    rotation_days: int = 90
    expiring_soon_days: int = 7
    inactivity_revocation_days: int = 90


@lru_cache(maxsize=1024)
def _severity(findings: tuple[Finding, ...]) -> int:
    # Ranking a fleet asks this of every token; a fleet has few distinct sets of findings.
    return sum(FINDING_SEVERITY[f] for f in findings)


@dataclass(frozen=True, slots=True)
class TokenAssessment:
    """A token with its owner's type, its findings and the days before Databricks revokes it."""

    token: Token
    principal_type: PrincipalType
    findings: tuple[Finding, ...]
    days_until_auto_revoke: int
    owner_display: str = ""

    @property
    def severity(self) -> int:
        """Sum of finding weights; higher is worse."""
        return _severity(self.findings)


@dataclass(slots=True)
class WorkspaceReport:
    """What the audit read from one workspace, or why it could not."""

    workspace: Workspace
    posture: Posture | None = None
    tokens: list[TokenAssessment] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    owner_known: bool | None = None  # with an owner filter: is that owner a principal here?
    migrations: list[PrincipalMigration] | None = None  # service principals' PATs → OAuth; None: not read

    @property
    def failed(self) -> bool:
        """Whether the workspace could not be read."""
        return self.error is not None


@dataclass(slots=True)
class FleetReport:
    """The audit of every workspace at one moment."""

    generated_at: datetime
    workspaces: list[WorkspaceReport]

    @property
    def tokens(self) -> list[TokenAssessment]:
        """Every token of every readable workspace, worst first."""
        rows = [t for ws in self.workspaces for t in ws.tokens]
        rows.sort(key=lambda t: (-t.severity, t.token.workspace, t.token.token_id))
        return rows

    @property
    def failed(self) -> list[WorkspaceReport]:
        """Workspaces that could not be read."""
        return [ws for ws in self.workspaces if ws.failed]

    def owner_known(self) -> bool | None:
        """With an owner filter: whether any workspace lists the owner (None when none could tell)."""
        answers = [ws.owner_known for ws in self.workspaces if ws.owner_known is not None]
        return any(answers) if answers else None

    def totals_by_finding(self) -> dict[Finding, int]:
        """How many tokens carry each finding, in severity order."""
        totals = dict.fromkeys(sorted(Finding, key=lambda f: -FINDING_SEVERITY[f]), 0)
        for ws in self.workspaces:
            for t in ws.tokens:
                for f in t.findings:
                    totals[f] += 1
        return totals

    def totals_by_workspace(self) -> dict[str, dict[Finding, int]]:
        """Per workspace label, how many tokens carry each finding."""
        out: dict[str, dict[Finding, int]] = {}
        for ws in self.workspaces:
            counts: dict[Finding, int] = {}
            for t in ws.tokens:
                for f in t.findings:
                    counts[f] = counts.get(f, 0) + 1
            out[ws.workspace.label] = counts
        return out
