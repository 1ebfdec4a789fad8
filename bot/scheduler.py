"""The in-process weekly scheduler of ``patbot serve`` (APScheduler 3, cron from the settings)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.settings import Settings

log = logging.getLogger(__name__)

WEEKLY_JOB_ID = "patbot-weekly"


def start_scheduler(settings: Settings, job: Callable[[], None]) -> BackgroundScheduler | None:
    """Run `job` at ``PATBOT_REMINDER_CRON`` in ``PATBOT_TIMEZONE``; None when ``PATBOT_SCHEDULER=off``.

    One run at a time; runs missed while the process was down within the hour are made up once.
    Replicas may each run it: the job itself is idempotent per ISO week.
    """
    if settings.scheduler == "off":
        return None
    timezone = ZoneInfo(settings.timezone)
    scheduler = BackgroundScheduler(timezone=timezone, daemon=True)
    scheduler.add_job(
        _logged(job),
        cron_trigger(settings.reminder_cron, timezone),
        id=WEEKLY_JOB_ID,
        name="weekly reminders and summary",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
        replace_existing=True,
    )
    scheduler.start()
    next_run = scheduler.get_job(WEEKLY_JOB_ID).next_run_time
    log.info("weekly job scheduled (%s %s); next run %s", settings.reminder_cron, settings.timezone, next_run)
    return scheduler


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def standard_day_of_week(field: str) -> str:
    """Crontab weekday numbers (0 or 7 = Sunday) as names, which APScheduler reads unambiguously.

    APScheduler's own numbers start at Monday = 0, so `0 9 * * 1` would otherwise run on Tuesday.
    """

    def name(match: re.Match[str]) -> str:
        number = int(match.group(0))
        if number > 7:
            raise ValueError(f"day of week {number} is out of range 0-7")
        return _DAY_NAMES[number]

    return re.sub(r"(?<!/)\d+", name, field)  # a step such as */2 stays a number


def cron_trigger(expression: str, timezone: ZoneInfo | str = "UTC") -> CronTrigger:
    """A trigger for a standard 5-field crontab expression."""
    fields = expression.split()
    if len(fields) == 5:
        fields[4] = standard_day_of_week(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)


def _logged(job: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("the weekly job failed; it runs again at the next scheduled time")

    return run
