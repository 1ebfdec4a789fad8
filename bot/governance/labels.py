"""How findings read to people: plain words, and one order (worst first) for every list of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.governance.models import FINDING_SEVERITY, Finding

FINDING_LABELS: dict[Finding, str] = {
    Finding.NON_EXPIRING: "never expires",
    Finding.EXPIRED: "expired",
    Finding.STALE: "stale",
    Finding.LONG_LIVED: "long-lived",
    Finding.UNROTATED: "not rotated",
    Finding.ORPHANED: "orphaned",
    Finding.EXPIRING_SOON: "expiring soon",
    Finding.UNSCOPED: "full access",
    Finding.OVERSCOPED: "can be narrowed",
    Finding.MINTS_TOKENS: "can mint tokens",
}


def finding_label(finding: Finding) -> str:
    """Plain words for a finding (its code, for one added without a label yet)."""
    return FINDING_LABELS.get(finding, finding.value.replace("_", " "))


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """Findings in the one order every message uses: the summary's, worst first."""
    return sorted(findings, key=lambda f: (-FINDING_SEVERITY.get(f, 0), f.value))


def counts_worst_first(counts: Mapping[Finding, int]) -> list[tuple[Finding, int]]:
    """Non-zero counts per finding, in the same order."""
    return [(f, counts[f]) for f in worst_first(counts) if counts[f]]
