"""The scheduled weekly job: one audit, this week's reminders, then the summary."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from bot.services import Services
from bot.weekly.chat import Chat
from bot.weekly.models import DmRenderer, ReminderResult, SummaryRenderer, SummaryResult
from bot.weekly.options import RemindOptions, SummaryOptions
from bot.weekly.reminders import remind
from bot.weekly.sources import audit_now
from bot.weekly.summary import summary

log = logging.getLogger(__name__)


def run_weekly(
    services: Services,
    chat: Chat,
    *,
    render_dm: DmRenderer,
    render_summary: SummaryRenderer,
    options: RemindOptions | None = None,
) -> tuple[ReminderResult, SummaryResult]:
    """The scheduled job: one audit, this week's reminders, then the summary (once per week)."""
    o = options or RemindOptions()
    moment = o.now or services.clock()
    report = audit_now(services, moment)
    reminders = remind(services, chat, render_dm, replace(o, now=moment, report=report))
    posted = summary(
        services,
        chat,
        render_summary,
        SummaryOptions(now=moment, report=report, reminders=reminders, sleep=o.sleep),
    )
    return reminders, posted


def weekly_job(
    services: Services,
    chat: Chat,
    *,
    render_dm: DmRenderer,
    render_summary: SummaryRenderer,
    options: RemindOptions | None = None,
) -> Callable[[], bool]:
    """The scheduler's job: `run_weekly` with a one-line log of what it did; True when it completed
    (every DM delivered or accounted for, the summary posted), else the next scheduled time retries."""

    def job() -> bool:
        reminders, posted = run_weekly(
            services, chat, render_dm=render_dm, render_summary=render_summary, options=options
        )
        log.info(
            "weekly job %s: %d DM(s) sent, %d failed, %d in doubt; summary %s",
            reminders.week,
            len(reminders.sent),
            len(reminders.failed),
            len(reminders.in_doubt),
            "posted" if posted.posted else "already posted" if posted.already_posted else "not posted",
        )
        return reminders.complete and (posted.posted or posted.already_posted)

    return job
