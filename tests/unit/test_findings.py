"""Every finding at its boundaries: exactly N days, never used, no expiry, expired."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.governance.findings import Classifier, guess_principal_type, suggested_scopes
from bot.governance.models import Finding, Policy, Principal, PrincipalType, Token

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
POLICY = Policy(stale_days=30, max_lifetime_days=90, rotation_days=90)


def make_token(
    *,
    created: datetime = NOW - timedelta(days=1),
    expires: datetime | None = NOW + timedelta(days=60),
    last_used: date | None = TODAY,
    scopes: tuple[str, ...] = ("sql",),
    owner_id: int | None = 1,
    owner: str = "alice@example.com",
    inferred: tuple[str, ...] = (),
    backfill: tuple[str, ...] = (),
    autoscope: str = "",
) -> Token:
    return Token(
        token_id="abcdef0123456789",
        workspace="https://ws",
        owner=owner,
        owner_id=owner_id,
        comment="c",
        created=created,
        expires=expires,
        last_used=last_used,
        scopes=scopes,
        autoscope_state=autoscope,
        inferred_scopes=inferred,
        backfill_scopes=backfill,
    )


def findings(token: Token, principals: dict[int, Principal] | None = None) -> set[Finding]:
    return set(Classifier(POLICY, NOW).classify(token, principals).findings)


def test_a_healthy_token_has_no_findings() -> None:
    assert findings(make_token()) == set()


@pytest.mark.parametrize(
    ("description", "expires", "expected"),
    [
        ("no expiry is non_expiring", None, {Finding.NON_EXPIRING}),
        ("expiry a second ago is expired", NOW - timedelta(seconds=1), {Finding.EXPIRED}),
        ("expiry exactly now is expired", NOW, {Finding.EXPIRED}),
        ("expiry in a second is expiring_soon", NOW + timedelta(seconds=1), {Finding.EXPIRING_SOON}),
        ("expiry on day 7 is expiring_soon", NOW + timedelta(days=7, hours=11), {Finding.EXPIRING_SOON}),
        ("expiry on day 8 is fine", datetime(2026, 12, 3, 0, 0, tzinfo=UTC), set()),
    ],
)
def test_expiry_rules(description: str, expires: datetime | None, expected: set[Finding]) -> None:
    assert findings(make_token(expires=expires)) == expected, description


@pytest.mark.parametrize(
    ("description", "last_used", "created", "stale"),
    [
        ("used 29 days ago is not stale", TODAY - timedelta(days=29), NOW - timedelta(days=40), False),
        ("used exactly 30 days ago is stale", TODAY - timedelta(days=30), NOW - timedelta(days=40), True),
        ("never used, created 29 days ago", None, NOW - timedelta(days=29), False),
        (
            "never used, created exactly 30 calendar days ago",
            None,
            datetime(2026, 10, 26, 23, 59, tzinfo=UTC),
            True,
        ),
        (
            "never used, created 30 days ago in the last second",
            None,
            datetime(2026, 10, 26, 23, 59, 59, tzinfo=UTC),
            True,
        ),
    ],
)
def test_stale_uses_whole_calendar_days(
    description: str, last_used: date | None, created: datetime, stale: bool
) -> None:
    assert (Finding.STALE in findings(make_token(last_used=last_used, created=created))) is stale, description


def test_unrotated_at_exactly_rotation_days() -> None:
    at_89 = make_token(created=NOW - timedelta(days=89), expires=NOW + timedelta(days=1))
    at_90 = make_token(created=datetime(2026, 8, 27, 23, 0, tzinfo=UTC), expires=NOW + timedelta(days=1))
    assert Finding.UNROTATED not in findings(at_89)
    assert Finding.UNROTATED in findings(at_90)


def test_long_lived_is_lifetime_above_the_maximum() -> None:
    created = NOW - timedelta(days=1)
    exactly = make_token(created=created, expires=created + timedelta(days=90))
    above = make_token(created=created, expires=created + timedelta(days=90, seconds=1))
    assert Finding.LONG_LIVED not in findings(exactly)
    assert Finding.LONG_LIVED in findings(above)
    assert Finding.LONG_LIVED not in findings(make_token(expires=None)), "non-expiring is its own finding"


def test_expired_tokens_keep_their_other_findings() -> None:
    created = NOW - timedelta(days=200)
    token = make_token(created=created, expires=created + timedelta(days=180), last_used=None)
    assert findings(token) == {Finding.EXPIRED, Finding.LONG_LIVED, Finding.STALE, Finding.UNROTATED}


@pytest.mark.parametrize(
    ("scopes", "unscoped"),
    [((), True), (("all-apis",), True), (("sql",), False), (("all-apis", "sql"), False)],
)
def test_unscoped(scopes: tuple[str, ...], unscoped: bool) -> None:
    assert (Finding.UNSCOPED in findings(make_token(scopes=scopes))) is unscoped


COMPLETED = "AUTOSCOPE_STATE_COMPLETED"


@pytest.mark.parametrize(
    ("description", "scopes", "inferred", "backfill", "autoscope", "overscoped"),
    [
        ("equal sets", ("sql", "jobs"), ("jobs", "sql"), (), COMPLETED, False),
        ("uses a subset of its scopes", ("sql", "jobs"), ("sql",), (), COMPLETED, True),
        ("uses more than it has: not wider", ("sql",), ("sql", "jobs"), (), COMPLETED, False),
        ("no scopes is full access, wider than any use", (), ("sql",), (), COMPLETED, True),
        ("all-apis is full access", ("all-apis",), ("jobs:read",), (), COMPLETED, True),
        ("backfill only", (), (), ("sql",), "AUTOSCOPE_STATE_BACKFILLED", True),
        ("backfill only, autoscope never enabled", ("sql", "jobs"), (), ("jobs",), "", True),
        ("inferred wins over backfill", ("sql", "jobs"), ("sql", "jobs"), ("sql",), COMPLETED, False),
        ("no usage data", (), (), (), "", False),
        ("no usage data, scoped", ("sql",), (), (), "AUTOSCOPE_STATE_DISABLED", False),
        ("jobs covers jobs:read: narrowable", ("jobs",), ("jobs:read",), (), COMPLETED, True),
        ("jobs:read used, jobs:read held", ("jobs:read",), ("jobs:read",), (), COMPLETED, False),
        ("sql covers restricted queries", ("sql",), ("sql:restricted-query",), (), COMPLETED, True),
        (
            "read + restricted-query held, both used",
            ("sql:read:restricted-query",),
            ("sql:read", "sql:restricted-query"),
            (),
            COMPLETED,
            False,
        ),
        ("still observing", (), ("sql",), (), "AUTOSCOPE_STATE_RUNNING", False),
        ("calls no scope covers", (), ("sql",), (), "AUTOSCOPE_STATE_API_NOT_COVERED", False),
    ],
)
def test_overscoped(
    description: str,
    scopes: tuple[str, ...],
    inferred: tuple[str, ...],
    backfill: tuple[str, ...],
    autoscope: str,
    overscoped: bool,
) -> None:
    token = make_token(scopes=scopes, inferred=inferred, backfill=backfill, autoscope=autoscope)
    assert (Finding.OVERSCOPED in findings(token)) is overscoped, description


@pytest.mark.parametrize(
    ("scopes", "mints"),
    [
        (("authentication",), True),
        (("sql", "authentication"), True),
        (("authentication:read",), False),
        (("sql",), False),
        ((), False),
        (("all-apis",), False),
    ],
)
def test_mints_tokens(scopes: tuple[str, ...], mints: bool) -> None:
    assert (Finding.MINTS_TOKENS in findings(make_token(scopes=scopes))) is mints


@pytest.mark.parametrize(
    ("description", "scopes", "inferred", "backfill", "suggested"),
    [
        ("full access narrows to what it uses", (), ("sql", "jobs:read"), (), ("jobs:read", "sql")),
        ("never wider than it has", ("sql:read",), ("sql",), (), ("sql:read",)),
        ("drops what it never used", ("sql", "jobs", "clusters"), ("jobs",), (), ("jobs",)),
        ("from backfill", ("all-apis",), (), ("unity-catalog:read",), ("unity-catalog:read",)),
        ("modifiers merge", (), ("sql:read", "sql:restricted-query"), (), ("sql:read:restricted-query",)),
        ("no usage data, no suggestion", (), (), (), ()),
    ],
)
def test_suggested_scopes(
    description: str,
    scopes: tuple[str, ...],
    inferred: tuple[str, ...],
    backfill: tuple[str, ...],
    suggested: tuple[str, ...],
) -> None:
    token = make_token(scopes=scopes, inferred=inferred, backfill=backfill, autoscope=COMPLETED)
    assert tuple(s.text for s in suggested_scopes(token)) == suggested, description


def test_orphaned_needs_an_active_principal() -> None:
    alice = Principal("1", "alice@example.com", "Alice", PrincipalType.USER, active=True)
    gone = Principal("1", "alice@example.com", "Alice", PrincipalType.USER, active=False)
    assert Finding.ORPHANED not in findings(make_token(), {1: alice})
    assert Finding.ORPHANED in findings(make_token(), {1: gone})
    assert Finding.ORPHANED in findings(make_token(), {}), "owner no longer listed at all"
    assert Finding.ORPHANED in findings(make_token(owner_id=None), {1: alice})
    assert Finding.ORPHANED not in findings(make_token(), None), "unknown principals: not judged"


def test_principal_type_comes_from_scim_else_from_the_owner_name() -> None:
    sp = Principal("7", "6f1c0f4e-1111-2222-3333-444455556666", "etl", PrincipalType.SERVICE_PRINCIPAL, True)
    result = Classifier(POLICY, NOW).classify(make_token(owner_id=7), {7: sp})
    assert result.principal_type is PrincipalType.SERVICE_PRINCIPAL
    assert result.owner_display == "etl"
    assert guess_principal_type("bob@example.com") is PrincipalType.USER
    assert guess_principal_type("6f1c0f4e-1111-2222-3333-444455556666") is PrincipalType.SERVICE_PRINCIPAL
    assert guess_principal_type("") is PrincipalType.UNKNOWN


@pytest.mark.parametrize(
    ("last_used", "created", "days_left"),
    [
        (TODAY, NOW - timedelta(days=300), 90),
        (TODAY - timedelta(days=10), NOW - timedelta(days=300), 80),
        (None, NOW - timedelta(days=89), 1),
        (None, NOW - timedelta(days=90), 0),
        (TODAY - timedelta(days=400), NOW - timedelta(days=500), 0),
    ],
)
def test_days_until_auto_revoke(last_used: date | None, created: datetime, days_left: int) -> None:
    token = make_token(last_used=last_used, created=created, expires=None)
    assert Classifier(POLICY, NOW).classify(token).days_until_auto_revoke == days_left


def test_classifier_refuses_naive_time() -> None:
    with pytest.raises(ValueError):
        Classifier(POLICY, datetime(2026, 1, 1))
