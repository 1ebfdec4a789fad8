"""Lifetime parsing and limits at the boundaries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.governance.lifetime import InvalidLifetime, check_lifetime, describe, parse_lifetime, policy_lifetime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h", timedelta(hours=1)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("90D", timedelta(days=90)),
        (" 7d ", timedelta(days=7)),
        ("2160h", timedelta(days=90)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_lifetime(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "0h", "30", "d", "30m", "1w", "-5d", "never", "1.5d", "999999d"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidLifetime):
        parse_lifetime(text)


def test_limits_at_the_boundary() -> None:
    check_lifetime(timedelta(days=90), 90, 730, "prod")
    check_lifetime(timedelta(hours=2160), 90, 730, "prod")
    with pytest.raises(InvalidLifetime, match="PATBOT_MAX_LIFETIME_DAYS"):
        check_lifetime(timedelta(days=90, hours=1), 90, 730, "prod")
    check_lifetime(timedelta(days=30), 90, 30, "prod")
    with pytest.raises(InvalidLifetime, match="prod's maxTokenLifetimeDays of 30"):
        check_lifetime(timedelta(days=31), 90, 30, "prod")


def test_policy_lifetime_takes_the_stricter_limit() -> None:
    assert policy_lifetime(90, 730) == timedelta(days=90)
    assert policy_lifetime(90, 30) == timedelta(days=30)


def test_describe() -> None:
    assert describe(timedelta(days=1)) == "1 day"
    assert describe(timedelta(days=2, hours=3)) == "2 days 3 hours"
    assert describe(timedelta(hours=1)) == "1 hour"
