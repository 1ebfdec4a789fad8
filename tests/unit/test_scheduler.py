"""PATBOT_REMINDER_CRON reads like a Kubernetes CronJob schedule, and the weekly job runs once a week."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from bot.errors import ConfigError
from bot.scheduler import CronSchedule, WeeklyScheduler
from bot.settings import load_settings
from bot.weekly.week_marker import WeekRuns

# Sunday 2026-11-22 00:00 UTC: the next seven days are Sun 22 … Sat 28.
SUNDAY = datetime(2026, 11, 22, tzinfo=UTC)


def fire_dates(expression: str, days: int = 7, timezone: str = "UTC") -> list[date]:
    """The dates the schedule fires on in the `days` days from SUNDAY 00:00 (just before)."""
    schedule = CronSchedule(expression, timezone)
    out: list[date] = []
    moment = SUNDAY - timedelta(seconds=1)
    end = SUNDAY + timedelta(days=days)
    while (moment := schedule.next_after(moment)) < end:
        out.append(moment.date())
    return out


def nov(*days: int) -> list[date]:
    return [date(2026, 11, d) for d in days]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 9 * * 0-6", nov(22, 23, 24, 25, 26, 27, 28)),  # every day
        ("0 9 * * 0-2", nov(22, 23, 24)),  # Sun, Mon, Tue
        ("0 9 * * */2", nov(22, 24, 26, 28)),  # Sun, Tue, Thu, Sat
        ("0 9 * * 7", nov(22)),  # 7 is Sunday too
        ("0 9 * * 0", nov(22)),
        ("0 9 * * 1", nov(23)),
        ("0 9 * * mon-fri", nov(23, 24, 25, 26, 27)),
        ("0 9 * * MON-FRI", nov(23, 24, 25, 26, 27)),
        ("0 9 * * sun", nov(22)),
        ("0 9 * * 1,3,5", nov(23, 25, 27)),
        ("0 9 * * mon,wed,fri", nov(23, 25, 27)),
        ("0 9 * * sat,sun", nov(22, 28)),
        ("0 9 * * 5-7", nov(22, 27, 28)),  # Fri, Sat, Sun
        ("0 9 * * 1-5/2", nov(23, 25, 27)),
        ("0 9 * nov tue", nov(24)),
        ("0 9 * dec tue", []),
        ("0 9 * * ?", nov(22, 23, 24, 25, 26, 27, 28)),
        ("@weekly", nov(22)),
        ("0 9 24 * mon", nov(23, 24)),  # both day fields set: either matches, as in cron
    ],
)
def test_weekday_fields_fire_on_the_dates_cron_would(expression: str, expected: list[date]) -> None:
    assert fire_dates(expression) == expected


def test_time_of_day_is_read_in_the_time_zone() -> None:
    schedule = CronSchedule("30 8 * * tue", "Europe/Paris")
    fire = schedule.next_after(SUNDAY)
    assert fire.isoformat() == "2026-11-24T08:30:00+01:00"
    assert fire.astimezone(UTC).hour == 7


@pytest.mark.parametrize(
    "expression",
    [
        "0 9 * *",
        "0 9 * * * *",
        "0 9 * * 8",
        "61 9 * * *",
        "0 9 * * funday",
        "0 9 L * *",
        "0 9 * * 5L",
        "0 9 * * 1#2",
        "0 9 * * mon-",
        "0 9 * * 5-1",
    ],
)
def test_invalid_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        CronSchedule(expression)


def test_settings_name_the_variable_of_a_bad_schedule() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(PATBOT_REMINDER_CRON="0 9 * * 1#2", DATABRICKS_HOST="https://x", _env_file=None)
    message = err.value.user_message
    assert (
        message.startswith("PATBOT_REMINDER_CRON: not a valid 5-field cron schedule") and "\n" not in message
    )
    assert load_settings(PATBOT_REMINDER_CRON="0 9 * * 0-6", _env_file=None).reminder_cron == "0 9 * * 0-6"


# ----------------------------------------------------------------------------- once per ISO week


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def scheduler(
    store: fakeredis.FakeRedis, clock: Clock, runs: list[str], result: bool = True
) -> WeeklyScheduler:
    def job() -> bool:
        runs.append(clock().isoformat())
        return result

    return WeeklyScheduler(CronSchedule("0 9 * * mon"), job, WeekRuns(store), clock=clock)


def test_a_restart_after_the_scheduled_time_runs_the_job_once_that_week() -> None:
    store = fakeredis.FakeRedis(decode_responses=True)
    runs: list[str] = []
    before = Clock(MONDAY_9 - timedelta(minutes=1))
    assert not scheduler(store, before, runs).catch_up(), "not due yet this week"
    down_at_nine = Clock(MONDAY_9 + timedelta(hours=3))
    assert scheduler(store, down_at_nine, runs).catch_up()
    assert scheduler(store, down_at_nine, runs).catch_up() is False, "a second restart: already done"
    later_that_week = Clock(MONDAY_9 + timedelta(days=4))
    assert not scheduler(store, later_that_week, runs).catch_up()
    next_week = Clock(MONDAY_9 + timedelta(days=7, minutes=1))
    assert scheduler(store, next_week, runs).catch_up()
    assert len(runs) == 2


def test_an_incomplete_run_waits_for_the_next_scheduled_time() -> None:
    store = fakeredis.FakeRedis(decode_responses=True)
    runs: list[str] = []
    clock = Clock(MONDAY_9 + timedelta(minutes=5))
    assert scheduler(store, clock, runs, result=False).catch_up()
    assert not scheduler(store, clock, runs).catch_up(), "not a missed run: no retry loop"
    assert scheduler(store, clock, runs).run_once(), "the next scheduled time retries it"
    assert not scheduler(store, clock, runs).run_once(), "done"
    assert len(runs) == 2
    sunday = Clock(datetime(2026, 11, 29, 23, 0, tzinfo=UTC))  # same ISO week, after the run
    assert not scheduler(store, sunday, runs).catch_up()


def test_a_run_abandoned_by_a_stopping_replica_is_caught_up_by_the_other() -> None:
    store = fakeredis.FakeRedis(decode_responses=True)
    clock = Clock(MONDAY_9 + timedelta(minutes=1))
    started, release = threading.Event(), threading.Event()

    def slow_job() -> bool:
        started.set()
        release.wait(10)
        return True

    schedule = CronSchedule("0 9 * * mon")
    stopping = WeeklyScheduler(schedule, slow_job, WeekRuns(store), clock=clock).start()
    assert started.wait(5)
    ran: list[str] = []
    other = WeeklyScheduler(schedule, lambda: ran.append("x") is None, WeekRuns(store), clock=clock)
    assert not other.catch_up(), "held by the live run"
    assert not stopping.stop(0.2), "SIGTERM while the job runs"
    assert other.catch_up() and ran == ["x"]
    release.set()


def test_a_crashed_run_is_taken_over_once_its_lease_expires() -> None:
    store = fakeredis.FakeRedis(decode_responses=True)
    wall = [MONDAY_9.timestamp()]
    dead = WeekRuns(store, lease_seconds=60, wall=lambda: wall[0])
    assert dead.claim("2026-W48")  # and the process dies here
    live = WeekRuns(store, lease_seconds=60, wall=lambda: wall[0])
    assert not live.claim("2026-W48")
    wall[0] += 61
    assert live.claim("2026-W48")
    live.finish("2026-W48")
    assert live.done("2026-W48") and not dead.claim("2026-W48")


def test_the_loop_fires_at_the_scheduled_time_and_stops() -> None:
    store = fakeredis.FakeRedis(decode_responses=True)
    clock = Clock(MONDAY_9 - timedelta(seconds=2))
    fired = threading.Event()

    def job() -> bool:
        fired.set()
        return True

    schedule = CronSchedule("0 9 * * mon")
    runner = WeeklyScheduler(schedule, job, WeekRuns(store), clock=clock, poll_seconds=0.01).start()
    try:
        assert not fired.wait(0.2), "not before nine"
        clock.now = MONDAY_9 + timedelta(seconds=1)
        assert fired.wait(5)
    finally:
        assert runner.stop(5)
    assert WeekRuns(store).done("2026-W48")


def test_week_is_counted_in_the_time_zone() -> None:
    store = fakeredis.FakeRedis(decode_responses=True)
    runs: list[str] = []
    # Monday 00:30 in Auckland is still Sunday in UTC (the previous ISO week there).
    clock = Clock(datetime(2026, 11, 22, 11, 30, tzinfo=UTC))
    job_scheduler = WeeklyScheduler(
        CronSchedule("0 0 * * mon", "Pacific/Auckland"),
        lambda: runs.append("ran") is None,
        WeekRuns(store),
        clock=clock,
    )
    assert job_scheduler.week(clock()) == "2026-W48"
    assert job_scheduler.catch_up() and runs == ["ran"]
    assert ZoneInfo("Pacific/Auckland")
