"""Crontab weekdays mean what cron means (APScheduler counts Monday as 0)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.scheduler import cron_trigger, standard_day_of_week

UTC = ZoneInfo("UTC")
WEDNESDAY = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "weekday"),
    [
        ("0 9 * * 1", "Monday"),
        ("0 9 * * mon", "Monday"),
        ("0 9 * * 0", "Sunday"),
        ("0 9 * * 7", "Sunday"),
        ("0 9 * * 5", "Friday"),
        ("0 9 * * 1-5", "Thursday"),
    ],
)
def test_next_run_day(expression: str, weekday: str) -> None:
    fire = cron_trigger(expression, UTC).get_next_fire_time(None, WEDNESDAY)
    assert fire is not None and fire.strftime("%A") == weekday


def test_ranges_and_lists_are_converted() -> None:
    assert standard_day_of_week("1-5") == "mon-fri"
    assert standard_day_of_week("0,6") == "sun,sat"
    assert standard_day_of_week("*/2") == "*/2"
    with pytest.raises(ValueError):
        standard_day_of_week("8")
