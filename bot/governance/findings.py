"""The contract's finding rules, as one pure classifier tuned for large fleets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from bot.governance.models import Finding, Policy, Principal, PrincipalType, Token, TokenAssessment

_FULL_ACCESS = "all-apis"


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

        scopes = token.scopes
        if not scopes or (len(scopes) == 1 and scopes[0] == _FULL_ACCESS):
            findings.append(Finding.UNSCOPED)

        remaining = policy.inactivity_revocation_days - idle_days
        return TokenAssessment(
            token=token,
            principal_type=principal_type,
            findings=tuple(findings),
            days_until_auto_revoke=remaining if remaining > 0 else 0,
            owner_display=owner_display,
        )


def guess_principal_type(owner: str) -> PrincipalType:
    """Users own tokens by e-mail; service principals by application ID (a UUID)."""
    if "@" in owner:
        return PrincipalType.USER
    if len(owner) == 36 and owner.count("-") == 4:
        return PrincipalType.SERVICE_PRINCIPAL
    return PrincipalType.UNKNOWN
