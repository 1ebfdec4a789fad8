"""The contract's finding rules, as one pure classifier tuned for large fleets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from bot.governance.models import Finding, Policy, Principal, PrincipalType, Token, TokenAssessment
from bot.governance.scopes import FULL_ACCESS, MINTS_TOKENS, Capability, Scope, covers, grant_of, intersect

# While autoscope is still observing, or saw calls no scope covers, what it inferred is not yet a safe
# set to narrow to.
UNSETTLED_AUTOSCOPE = frozenset({"AUTOSCOPE_STATE_RUNNING", "AUTOSCOPE_STATE_API_NOT_COVERED"})


class Classifier:
    """Judges tokens against a policy at a fixed moment `now` (aware UTC)."""

    def __init__(self, policy: Policy, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.policy = policy
        self.now = now.astimezone(UTC)
        self._today = self.now.date().toordinal()
        self._max_lifetime = timedelta(days=policy.max_lifetime_days)

    def classify(
        self,
        token: Token,
        principals: Mapping[int, Principal] | None = None,
    ) -> TokenAssessment:
        """Findings for one token; `principals` (by SCIM id) enables `orphaned`, None skips it."""
        policy = self.policy
        today = self._today
        findings: list[Finding] = []
        created_day = token.created.date().toordinal()
        last_used_day = token.last_used.toordinal() if token.last_used is not None else None
        expires = token.expires

        if expires is None:
            findings.append(Finding.NON_EXPIRING)
        elif expires <= self.now:
            findings.append(Finding.EXPIRED)
        else:
            if expires.date().toordinal() - today <= policy.expiring_soon_days:
                findings.append(Finding.EXPIRING_SOON)
        if expires is not None and expires - token.created > self._max_lifetime:
            findings.append(Finding.LONG_LIVED)

        activity_day = last_used_day if last_used_day is not None else created_day
        idle_days = today - activity_day
        if idle_days >= policy.stale_days:
            findings.append(Finding.STALE)
        if today - created_day >= policy.rotation_days:
            findings.append(Finding.UNROTATED)

        principal_type = PrincipalType.UNKNOWN
        owner_display = token.owner
        if principals is not None:
            principal = principals.get(token.owner_id) if token.owner_id is not None else None
            if principal is None or not principal.active:
                findings.append(Finding.ORPHANED)
            if principal is not None:
                principal_type = principal.type
                owner_display = principal.display_name or principal.name
        if principal_type is PrincipalType.UNKNOWN:
            principal_type = guess_principal_type(token.owner)

        findings += _scope_findings(token.scopes, token.used_scopes, token.autoscope_state)

        remaining = policy.inactivity_revocation_days - idle_days
        # Positional, in field order (keywords cost a frozen dataclass a tenth more per token).
        return TokenAssessment(
            token, principal_type, tuple(findings), remaining if remaining > 0 else 0, owner_display
        )


def scope_findings(token: Token) -> list[Finding]:
    """`unscoped`, `overscoped` and `mints_tokens` for one token."""
    return list(_scope_findings(tuple(token.scopes), tuple(token.used_scopes), token.autoscope_state))


@lru_cache(maxsize=4096)
def _scope_findings(
    scopes: tuple[str, ...], used: tuple[str, ...], autoscope_state: str
) -> tuple[Finding, ...]:
    # They depend on these three fields alone, and a fleet repeats a few combinations many times over.
    out: list[Finding] = []
    if not scopes or all(s == FULL_ACCESS for s in scopes):
        out.append(Finding.UNSCOPED)
    if (
        bool(used)
        and autoscope_state not in UNSETTLED_AUTOSCOPE
        and not _covers(used, scopes or (FULL_ACCESS,))
    ):
        out.append(Finding.OVERSCOPED)  # `narrowable`, on the fields
    if Capability.WRITE in grant_of(scopes).get(MINTS_TOKENS, frozenset()):
        out.append(Finding.MINTS_TOKENS)
    return tuple(out)


def usage_known(token: Token) -> bool:
    """Whether Databricks has inferred the token's use and the inference is settled."""
    return bool(token.used_scopes) and token.autoscope_state not in UNSETTLED_AUTOSCOPE


def narrowable(token: Token) -> bool:
    """Usage is known and the token's scopes (or full access) allow more than it uses."""
    # No scopes is full access; spelled out, since `covers` reads an empty `used` as "uses nothing".
    return usage_known(token) and not _covers(token.used_scopes, token.scopes or (FULL_ACCESS,))


@lru_cache(maxsize=4096)
def _covers(granted: tuple[str, ...], used: tuple[str, ...]) -> bool:
    # A fleet repeats a few scope sets many times over.
    return covers(granted, used)


def suggested_scopes(token: Token) -> tuple[Scope, ...]:
    """The scopes to narrow to: what Databricks saw it use, within what it has; () when usage is unknown."""
    if not usage_known(token):
        return ()
    return intersect(token.scopes, token.used_scopes)


def guess_principal_type(owner: str) -> PrincipalType:
    """Users own tokens by e-mail; service principals by application ID (a UUID)."""
    if "@" in owner:
        return PrincipalType.USER
    if len(owner) == 36 and owner.count("-") == 4:
        return PrincipalType.SERVICE_PRINCIPAL
    return PrincipalType.UNKNOWN
