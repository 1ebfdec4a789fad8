"""The migration state of a service principal, its OAuth secrets' findings, and the scopes it may get."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.governance.findings import Classifier
from bot.governance.migration import (
    MigrationState,
    OAuthSecret,
    Standing,
    assess_migrations,
    count_states,
    secret_findings,
    standing,
    union_scopes,
)
from bot.governance.models import Finding, Policy, Principal, PrincipalType, Token
from bot.governance.scopes import covers

NOW = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)
TODAY = NOW.date()
STALE = 30
SP_ID = "5133000000000001"


def pat(
    used_days_ago: int | None = 0, expires_in_days: int | None = 30, scopes: tuple[str, ...] = (), n: int = 0
) -> Token:
    return Token(
        token_id=f"{n:064x}",
        workspace="https://prod",
        owner="app-id",
        owner_id=int(SP_ID),
        comment="",
        created=NOW - timedelta(days=200),
        expires=NOW + timedelta(days=expires_in_days) if expires_in_days is not None else None,
        last_used=TODAY - timedelta(days=used_days_ago) if used_days_ago is not None else None,
        scopes=scopes,
    )


def secret(
    created_days_ago: int, lifetime_days: int | None = 90, status: str = "ACTIVE", n: int = 0
) -> OAuthSecret:
    created = NOW - timedelta(days=created_days_ago)
    expires = created + timedelta(days=lifetime_days) if lifetime_days is not None else None
    return OAuthSecret(f"s{n}", SP_ID, "https://prod", created, expires, status=status)


def day(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


STATES = [
    # (description, pats, secrets, expected standing)
    ("PATs and no secret", [pat(2)], [], Standing(MigrationState.PAT_ONLY, None, day(2))),
    ("never-used PAT, no secret", [pat(None)], [], Standing(MigrationState.PAT_ONLY)),
    (
        "an expired secret is no migration",
        [pat(2)],
        [secret(100)],
        Standing(MigrationState.PAT_ONLY, None, day(2)),
    ),
    (
        "a revoked-status secret is no migration",
        [pat(2)],
        [secret(10, status="REVOKED")],
        Standing(MigrationState.PAT_ONLY, None, day(2)),
    ),
    (
        "PAT used after the migration day",
        [pat(2)],
        [secret(5)],
        Standing(MigrationState.PATS_IN_USE, day(5), day(2)),
    ),
    (
        "a use on the migration day itself does not count",
        [pat(5)],
        [secret(5)],
        Standing(MigrationState.PATS_UNUSED, day(5), day(5)),
    ),
    (
        "unused since, migration younger than stale days",
        [pat(40)],
        [secret(29)],
        Standing(MigrationState.PATS_UNUSED, day(29), day(40)),
    ),
    (
        "unused since, migration exactly stale days ago: propose revocation",
        [pat(40)],
        [secret(30)],
        Standing(MigrationState.PATS_UNUSED, day(30), day(40), propose_revocation=True),
    ),
    (
        "never-used PAT of a principal migrated long ago",
        [pat(None)],
        [secret(45)],
        Standing(MigrationState.PATS_UNUSED, day(45), None, propose_revocation=True),
    ),
    (
        "the oldest live secret is the migration day",
        [pat(20, n=1), pat(50, n=2)],
        [secret(10, n=1), secret(40, n=2), secret(100, n=3)],
        Standing(MigrationState.PATS_IN_USE, day(40), day(20)),
    ),
    ("secret and no PAT", [], [secret(3)], Standing(MigrationState.PAT_FREE, day(3))),
    (
        "only expired PATs left",
        [pat(60, expires_in_days=-1)],
        [secret(3)],
        Standing(MigrationState.PAT_FREE, day(3)),
    ),
    ("only expired PATs, no secret", [pat(60, expires_in_days=-1)], [], Standing(MigrationState.PAT_FREE)),
    (
        "a non-expiring PAT used since counts",
        [pat(1, expires_in_days=None)],
        [secret(3)],
        Standing(MigrationState.PATS_IN_USE, day(3), day(1)),
    ),
]


@pytest.mark.parametrize(
    ("pats", "secrets", "expected"), [row[1:] for row in STATES], ids=[row[0] for row in STATES]
)
def test_standing(pats: list[Token], secrets: list[OAuthSecret], expected: Standing) -> None:
    assert standing(pats, secrets, NOW, STALE) == expected


def test_a_principal_without_any_credential_has_no_standing() -> None:
    assert standing([], [], NOW, STALE) is None


POLICY = Policy(max_lifetime_days=90, expiring_soon_days=7)
FINDINGS = [
    ("fresh, within the maximum", secret(1, 90), ()),
    ("no expiry: no non_expiring for secrets", secret(1, None), ()),
    ("above the maximum lifetime", secret(1, 91), (Finding.LONG_LIVED,)),
    ("expires in 7 days", secret(83, 90), (Finding.EXPIRING_SOON,)),
    ("expires in 8 days", secret(82, 90), ()),
    ("expired", secret(91, 90), (Finding.EXPIRED,)),
    ("expired and long-lived", secret(800, 730), (Finding.EXPIRED, Finding.LONG_LIVED)),
]


@pytest.mark.parametrize(
    ("item", "expected"), [row[1:] for row in FINDINGS], ids=[row[0] for row in FINDINGS]
)
def test_secret_findings(item: OAuthSecret, expected: tuple[Finding, ...]) -> None:
    assert secret_findings(item, POLICY, NOW) == expected


UNIONS = [
    ("scoped PATs merge", [("sql",), ("jobs:read", "sql:read")], ["jobs:read", "sql"]),
    ("a wider modifier-free scope absorbs its read slice", [("jobs:read",), ("jobs",)], ["jobs"]),
    ("one full-access PAT makes it full access", [("sql",), ()], ["all-apis"]),
    ("all-apis spelled out", [("all-apis",), ("sql",)], ["all-apis"]),
    ("no PATs, no scopes", [], []),
]


@pytest.mark.parametrize(
    ("scope_sets", "expected"), [row[1:] for row in UNIONS], ids=[row[0] for row in UNIONS]
)
def test_union_scopes(scope_sets: list[tuple[str, ...]], expected: list[str]) -> None:
    pats = [pat(scopes=s, n=n) for n, s in enumerate(scope_sets)]
    got = union_scopes(pats)
    assert sorted(s.text for s in got) == expected
    for p in pats:
        assert covers(got, p.scopes or ("all-apis",)), "every PAT's access is kept"
    granted = [s for p in pats for s in (p.scopes or ("all-apis",))]
    assert not pats or covers(granted, got), "and nothing more"


def test_assess_migrations_per_principal() -> None:
    classifier = Classifier(POLICY, NOW)
    sp = Principal(SP_ID, "app-id", "etl", PrincipalType.SERVICE_PRINCIPAL, True)
    idle = Principal("77", "other-app", "idle", PrincipalType.SERVICE_PRINCIPAL, True)
    free = Principal("88", "free-app", "free", PrincipalType.SERVICE_PRINCIPAL, True)
    tokens = [classifier.classify(pat(2))]
    free_secret = OAuthSecret("f", "88", "https://prod", NOW - timedelta(days=86), NOW + timedelta(days=4))
    rows = assess_migrations("prod", [sp, idle, free], tokens, {"88": [free_secret]}, POLICY, NOW)
    assert [(r.principal.display_name, r.state) for r in rows] == [
        ("etl", MigrationState.PAT_ONLY),
        ("free", MigrationState.PAT_FREE),
    ], "a principal with neither PATs nor secrets is left out"
    assert rows[1].secrets[0].findings == (Finding.EXPIRING_SOON,)
    assert count_states(rows) == {
        MigrationState.PAT_ONLY: 1,
        MigrationState.PATS_IN_USE: 0,
        MigrationState.PATS_UNUSED: 0,
        MigrationState.PAT_FREE: 1,
    }
