"""How a weekly run goes: what it works from, and how it paces itself (tests and benches turn the knobs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.weekly.ledger import DEFAULT_LEASE_SECONDS
from bot.weekly.pacing import DEFAULT_RATE_PER_MINUTE

if TYPE_CHECKING:
    from bot.governance.models import FleetReport
    from bot.weekly.directory import SlackOwners
    from bot.weekly.models import ReminderResult

DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class RemindOptions:
    """How one reminder run goes: what it works from, and how it paces itself.

    `sleep` and `clock` pace the campaign and wait out 429s (a benchmark injects emulated time); `wall`
    times the claims' leases. With `dry_run`, Slack is only read (to match owners) and no marker is written.
    """

    dry_run: bool = False
    now: datetime | None = None
    report: FleetReport | None = None
    owners: SlackOwners | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    poll_seconds: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class SummaryOptions:
    """How one summary is posted: `reminders` (this week's run) supplies the owners not in Slack, else
    they are matched here; `force` posts again in a week that already has one; `chart` attaches the PNG."""

    dry_run: bool = False
    now: datetime | None = None
    report: FleetReport | None = None
    reminders: ReminderResult | None = None
    owners: SlackOwners | None = None
    force: bool = False
    chart: bool = True
    sleep: Callable[[float], None] = time.sleep
