"""The weekly job: reminder DMs to owners of stale or non-expiring tokens, and the admin summary.

Slack-free: it talks to the chat platform through the `Chat` port (``chat``; ``handlers.weekly_chat``
implements it over Slack) and renders messages through functions handed in by the caller
(``handlers.weekly_blocks``).

- ``models``       the records: a rendered message, an owner's reminder, a run's results, the summary
- ``sources``      what the job works from: the Redis store and the fleet audit
- ``chat``         the port: four calls, and three kinds of failure (refused, not sent, no answer)
- ``slack_calls``  one call at a time, waiting out rate limits; `SlackUnavailable`
- ``directory``    e-mail → Slack user (`SlackOwners`)
- ``pacing``       the shared DM rate that 429s slow down (`RatePacer`)
- ``ledger``       the exactly-once markers, one per owner and ISO week (`ReminderLedger`)
- ``campaign``     delivering one run's DMs on a bounded pool
- ``reminders``    who gets a DM this week, and `remind`
- ``chart``        the findings-by-workspace PNG
- ``summary``      the admin summary's figures, and `summary`
- ``job``          `run_weekly` and the scheduler's `weekly_job`
- ``week_marker``  the scheduled job's once-per-ISO-week marker (`WeekRuns`)
"""

from bot.approvals import StoreUnavailable
from bot.weekly.chart import findings_chart_png
from bot.weekly.chat import Chat, ChatNoAnswer, ChatNotSent, ChatRefused
from bot.weekly.directory import DIRECTORY_TTL_SECONDS, SlackOwners
from bot.weekly.job import run_weekly, weekly_job
from bot.weekly.ledger import DEFAULT_LEASE_SECONDS, MARKER_TTL_SECONDS, Claim, ReminderLedger
from bot.weekly.models import (
    Block,
    DmRenderer,
    FlaggedToken,
    OwnerReminder,
    OwnerTally,
    ReminderResult,
    Rendered,
    ScopeShare,
    SummaryRenderer,
    SummaryResult,
    WeeklySummary,
    WeekTotals,
    iso_week,
)
from bot.weekly.options import DEFAULT_CONCURRENCY, RemindOptions, SummaryOptions
from bot.weekly.pacing import DEFAULT_RATE_PER_MINUTE, RatePacer
from bot.weekly.reminders import DM_FINDINGS, dm_lines, plan_reminders, remind
from bot.weekly.slack_calls import SlackUnavailable, call_slack
from bot.weekly.sources import audit_now
from bot.weekly.summary import (
    TOTALS_TTL_SECONDS,
    build_summary,
    delta_text,
    owner_tallies,
    previous_count,
    scope_share,
    summary,
    week_totals,
)
from bot.weekly.week_marker import WeekRuns

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_RATE_PER_MINUTE",
    "DIRECTORY_TTL_SECONDS",
    "DM_FINDINGS",
    "MARKER_TTL_SECONDS",
    "TOTALS_TTL_SECONDS",
    "Block",
    "Chat",
    "ChatNoAnswer",
    "ChatNotSent",
    "ChatRefused",
    "Claim",
    "DmRenderer",
    "FlaggedToken",
    "OwnerReminder",
    "OwnerTally",
    "RatePacer",
    "RemindOptions",
    "ReminderLedger",
    "ReminderResult",
    "Rendered",
    "ScopeShare",
    "SlackOwners",
    "SlackUnavailable",
    "StoreUnavailable",
    "SummaryOptions",
    "SummaryRenderer",
    "SummaryResult",
    "WeekRuns",
    "WeekTotals",
    "WeeklySummary",
    "audit_now",
    "build_summary",
    "call_slack",
    "delta_text",
    "dm_lines",
    "findings_chart_png",
    "iso_week",
    "owner_tallies",
    "plan_reminders",
    "previous_count",
    "remind",
    "run_weekly",
    "scope_share",
    "summary",
    "week_totals",
    "weekly_job",
]
