"""The scope order ("covers"), narrowing, and the validator of typed scope names."""

from __future__ import annotations

import pytest

from bot.governance.scopes import (
    SCOPE_CATALOGUE,
    InvalidScope,
    Scope,
    covers,
    intersect,
    is_full_access,
    parse_scope,
    validate_scopes,
)


@pytest.mark.parametrize(
    ("granted", "used", "expected"),
    [
        (["jobs"], ["jobs"], True),
        (["jobs"], ["jobs:read"], True),
        (["jobs:read"], ["jobs"], False),
        (["jobs:read"], ["jobs:read"], True),
        (["sql"], ["sql:restricted-query"], True),
        (["sql"], ["sql:read:restricted-query"], True),
        (["sql:read"], ["sql:restricted-query"], False),
        (["sql:restricted-query"], ["sql:read"], False),
        (["sql:read:restricted-query"], ["sql:read", "sql:restricted-query"], True),
        (["sql:read", "sql:restricted-query"], ["sql:read:restricted-query"], True),
        (["sql:read:restricted-query"], ["sql"], False),
        (["sql"], ["sql", "jobs"], False),
        (["sql", "jobs"], ["jobs"], True),
        ([], ["sql", "jobs", "all-apis"], True),
        (["all-apis"], ["sql", "clusters:read"], True),
        (["all-apis:read"], ["clusters:read"], True),
        (["all-apis:read"], ["clusters"], False),
        (["sql", "jobs"], ["all-apis"], False),
        (["sql"], [], True),
        (["sql"], [], True),
    ],
)
def test_covers(granted: list[str], used: list[str], expected: bool) -> None:
    assert covers(granted, used) is expected


def test_covers_accepts_scope_objects() -> None:
    assert covers([Scope("jobs")], [Scope("jobs", read=True)])
    assert not covers([Scope("jobs", read=True)], [Scope("jobs")])


@pytest.mark.parametrize(
    ("granted", "used", "expected"),
    [
        ([], ["sql"], ["sql"]),
        (["sql:read"], ["sql"], ["sql:read"]),
        (["sql"], ["jobs"], []),
        (["all-apis"], ["all-apis"], ["all-apis"]),
        (["all-apis:read"], ["jobs", "sql"], ["jobs:read", "sql:read"]),
        (["jobs", "sql:read"], ["all-apis"], ["jobs", "sql:read"]),
    ],
)
def test_intersect_is_never_wider_than_either_side(
    granted: list[str], used: list[str], expected: list[str]
) -> None:
    result = intersect(granted, used)
    assert [s.text for s in result] == expected
    assert covers(granted, result) and covers(used, result)


def test_parse_is_lenient_for_what_databricks_reports() -> None:
    assert parse_scope("SQL:Read") == Scope("sql", read=True)
    assert parse_scope("brand-new-api") == Scope("brand-new-api")
    assert parse_scope("sql:restricted-query:read").text == "sql:read:restricted-query"


def test_validate_accepts_names_and_modifiers_and_drops_duplicates() -> None:
    got = validate_scopes(["sql", " jobs:read ", "sql:read:restricted-query", "sql", ""])
    assert [s.text for s in got] == ["sql", "jobs:read", "sql:read:restricted-query"]


@pytest.mark.parametrize(
    ("texts", "named"),
    [
        (["sql", "jobz"], "`jobz`"),
        (["jobs:write"], "`write`"),
        (["jobs:restricted-query"], "`jobs`"),
        (["sql:read:read"], "Repeated"),
        ([], "No API scope"),
        (["  "], "No API scope"),
    ],
)
def test_validate_refuses_with_a_message_naming_the_problem(texts: list[str], named: str) -> None:
    with pytest.raises(InvalidScope) as err:
        validate_scopes(texts)
    assert named in err.value.user_message
    assert "\n" not in err.value.user_message


def test_catalogue_holds_the_documented_names() -> None:
    for name in ("all-apis", "sql", "jobs", "unity-catalog", "authentication", "clusters", "scim"):
        assert name in SCOPE_CATALOGUE


@pytest.mark.parametrize(
    ("scopes", "full"),
    [
        ([], True),
        (["all-apis"], True),
        (["sql", "all-apis"], True),
        (["all-apis:read"], False),
        (["sql"], False),
    ],
)
def test_is_full_access(scopes: list[str], full: bool) -> None:
    assert is_full_access(scopes) is full
