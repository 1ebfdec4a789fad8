"""The in-process weekly scheduler of ``patbot serve``: a Kubernetes-style cron in ``PATBOT_TIMEZONE``.

The schedule is read by ``cronsim`` the way a Kubernetes CronJob reads its ``schedule``: five fields,
0 and 7 both Sunday, ranges, steps, lists and names (``mon-fri``, ``jan``), ``?`` for ``*``, and the
``@weekly``-style macros. Non-standard extensions (``L``, ``W``, ``#``) are refused, as Kubernetes does.

Each ISO week the job runs once, whatever restarts or replicas happen: a week marker in Redis
(`bot.weekly.week_marker.WeekRuns`) is claimed before the job runs and marked done when it completed.
A scheduled time of this week that passed while no process ran the job (patbot was down, or stopped
mid-run) is caught up once, on start or within a poll interval; an incomplete run is retried at the
next scheduled time.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

# The macros Kubernetes accepts (robfig/cron's standard parser), as plain 5-field expressions.
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD = re.compile(r"^[0-9A-Za-z*?,/-]+$")
_EXTENSION = re.compile(r"(^|[^A-Za-z])(L|W|LW)($|[^A-Za-z])|\d[LW]", re.IGNORECASE)
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class CronSchedule:
    """A 5-field crontab expression in a time zone; `ValueError` with a one-line reason when invalid."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = expression
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self._expr = _standard(expression)
        try:
            CronSim(self._expr, datetime(2000, 1, 1, tzinfo=self.tz))
        except CronSimError as exc:
            raise ValueError(str(exc).lower()) from None

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled time strictly after `moment` (aware, in the schedule's zone)."""
        return next(CronSim(self._expr, moment.astimezone(self.tz)))

    def last_at_or_before(self, moment: datetime) -> datetime:
        """The latest scheduled time at or before `moment`."""
        start = moment.astimezone(self.tz).replace(microsecond=0) + timedelta(seconds=1)
        return next(CronSim(self._expr, start, reverse=True))


def _standard(expression: str) -> str:
    """The expression as cronsim reads it, after Kubernetes' own rules."""
    text = expression.strip()
    text = _MACROS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"minute hour day-of-month month day-of-week; got {len(fields)} field(s)")
    for name, field in zip(_FIELD_NAMES, fields, strict=True):
        if not _FIELD.match(field):
            raise ValueError(f"bad {name} {field!r}")
        if "#" in field or (name in ("day of month", "day of week") and _EXTENSION.search(field)):
            raise ValueError(f"bad {name} {field!r}: L, W and # are not Kubernetes cron syntax")
    # `?` means `*` in the day fields (robfig/cron); cronsim knows only `*`.
    fields[2:] = [f.replace("?", "*") for f in fields[2:]]
    return " ".join(fields)


def parse_cron(expression: str, timezone: str = "UTC") -> CronSchedule:
    """Validate and parse ``PATBOT_REMINDER_CRON`` (what settings validation calls)."""
    return CronSchedule(expression, timezone)


class WeekRunsPort(Protocol):
    """The week markers the scheduler needs (`bot.weekly.week_marker.WeekRuns` on Redis)."""

    def claim(self, week: str) -> bool: ...
    def renew(self, week: str) -> bool: ...
    def finish(self, week: str, *, complete: bool = True) -> None: ...
    def release(self, week: str) -> None: ...
    def missed(self, week: str) -> bool: ...


WeeklyJob = Callable[[], bool | None]
"""The job: returns False when it did not complete (it is retried at the next scheduled time)."""


def iso_week_of(moment: datetime, tz: ZoneInfo) -> str:
    """``2026-W48`` for `moment` in `tz`."""
    year, week, _ = moment.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WeeklyScheduler:
    """Runs the weekly job at the schedule's times, at most once per ISO week across processes."""

    def __init__(
        self,
        schedule: CronSchedule,
        job: WeeklyJob,
        runs: WeekRunsPort,
        *,
        clock: Callable[[], datetime] = _utc_now,
        poll_seconds: float = 30.0,
        renew_seconds: float = 60.0,
    ) -> None:
        self.schedule = schedule
        self.job = job
        self.runs = runs
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.renew_seconds = renew_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running_week: str | None = None

    def week(self, moment: datetime) -> str:
        """The ISO week of `moment` in the schedule's zone."""
        return iso_week_of(moment, self.schedule.tz)

    def missed(self, now: datetime | None = None) -> bool:
        """Whether a scheduled time of this ISO week has passed and no process ran (or is running) the job."""
        current = now or self.clock()
        last = self.schedule.last_at_or_before(current)
        week = self.week(current)
        return self.week(last) == week and self.runs.missed(week)

    def catch_up(self) -> bool:
        """Run the job now if this week's scheduled time passed without it; True if it ran here."""
        if not self.missed():
            return False
        log.info("the weekly job missed its scheduled time this week: running it now")
        return self.run_once()

    def run_once(self) -> bool:
        """Claim this ISO week and run the job; False when another run holds or finished the week."""
        week = self.week(self.clock())
        if not self.runs.claim(week):
            log.info("weekly job for %s already done or running elsewhere; skipped", week)
            return False
        self._running_week = week
        done = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(week, done), name="patbot-week-lease", daemon=True
        )
        renewer.start()
        complete = False
        try:
            complete = self.job() is not False
        except Exception:
            log.exception("the weekly job failed; it runs again at the next scheduled time")
        finally:
            done.set()
            renewer.join()
            self._running_week = None
            self.runs.finish(week, complete=complete)
        return True

    def _renew(self, week: str, done: threading.Event) -> None:
        while not done.wait(self.renew_seconds):
            if not self.runs.renew(week):
                log.warning("lost the weekly job's lease for %s", week)
                return

    def start(self) -> WeeklyScheduler:
        """Catch up (if needed) and follow the schedule on a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="patbot-scheduler", daemon=True)
        self._thread.start()
        log.info(
            "weekly job scheduled (%s %s); next run %s",
            self.schedule.expression,
            self.schedule.timezone,
            self.schedule.next_after(self.clock()).isoformat(),
        )
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop following the schedule; True when no job is still running after `timeout` seconds.

        A job still running then is abandoned to the process exit: its week is released, so the next
        start (or another replica) catches it up without sending anything twice.
        """
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        week = self._running_week
        if self._thread.is_alive() and week is not None:
            log.warning("stopping during the weekly job of %s: the next start catches it up", week)
            self.runs.release(week)
            return False
        return True

    def _loop(self) -> None:
        try:
            self.catch_up()
        except Exception:
            log.exception("could not check for a missed weekly run")
        due = self.schedule.next_after(self.clock())
        while not self._stop.is_set():
            now = self.clock()
            if now < due:
                # Short waits, so a changed wall clock (or a suspended host) is noticed, and a run
                # abandoned by a stopping replica is caught up here.
                self._stop.wait(min(self.poll_seconds, (due - now).total_seconds()))
                try:
                    if not self._stop.is_set() and self.missed():
                        self.run_once()
                except Exception:
                    log.exception("could not check for a missed weekly run")
                continue
            try:
                self.run_once()
            except Exception:
                log.exception("the weekly job could not start (store unavailable?)")
            due = self.schedule.next_after(max(self.clock(), due))


def start_scheduler(settings: Settings, job: WeeklyJob, runs: WeekRunsPort) -> WeeklyScheduler | None:
    """Follow ``PATBOT_REMINDER_CRON`` in ``PATBOT_TIMEZONE``; None when ``PATBOT_SCHEDULER=off``."""
    if settings.scheduler == "off":
        return None
    schedule = CronSchedule(settings.reminder_cron, settings.timezone)
    return WeeklyScheduler(schedule, job, runs).start()
