"""The weekly job's records: what a DM and the summary show, and what a run did."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.approvals.in_doubt import InDoubt
from bot.governance.migration import MigrationProgress
from bot.governance.models import Finding, PrincipalType, TokenAssessment

Block = dict[str, Any]


def iso_week(moment: datetime, timezone: str = "UTC") -> str:
    """The ISO week of `moment` in `timezone`, such as ``2025-W07``."""
    year, week, _ = moment.astimezone(ZoneInfo(timezone)).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message ready for ``chat.postMessage``: notification text and Block Kit blocks."""

    text: str
    blocks: list[Block]


@dataclass(frozen=True, slots=True)
class FlaggedToken:
    """A token with its workspace's label, as shown in messages."""

    assessment: TokenAssessment
    workspace: str


@dataclass(frozen=True, slots=True)
class OwnerReminder:
    """One owner's DM: the tokens that are stale or never expire, worst first."""

    email: str
    display: str
    tokens: tuple[FlaggedToken, ...]
    week: str
    other_flagged: int = 0  # the owner's other tokens with findings (not listed in the DM)
    user_id: str | None = None
    narrowable: tuple[
        FlaggedToken, ...
    ] = ()  # the owner's overscoped tokens, each with a "Narrow to …" button


@dataclass(slots=True)
class ReminderResult:
    """What a reminder run did (or, with ``dry_run``, would do)."""

    week: str
    dry_run: bool
    planned: list[OwnerReminder] = field(default_factory=list)  # DMs attempted / that would be sent
    sent: list[str] = field(default_factory=list)
    skipped_already_sent: list[str] = field(default_factory=list)
    not_in_slack: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # e-mail -> reason
    in_doubt: list[str] = field(default_factory=list)  # a DM may have gone out; not retried this week
    in_progress_elsewhere: list[str] = field(default_factory=list)
    service_principal_tokens: list[FlaggedToken] = field(default_factory=list)
    unreadable_workspaces: dict[str, str] = field(default_factory=dict)  # label -> error
    slack_calls: int = 0

    @property
    def eligible(self) -> int:
        """Owners who hold at least one stale or non-expiring token."""
        return len(self.planned) + len(self.skipped_already_sent) + len(self.not_in_slack)

    @property
    def complete(self) -> bool:
        """Every workspace was read and every eligible owner in Slack has (or had) the DM."""
        return not (self.failed or self.unreadable_workspaces or self.in_progress_elsewhere)


@dataclass(frozen=True, slots=True)
class WeekTotals:
    """The figures kept per ISO week to show the change since last week."""

    tokens: int
    findings: dict[str, int]

    def to_json(self) -> str:
        """Serialised for Redis."""
        return json.dumps({"tokens": self.tokens, "findings": self.findings}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> WeekTotals | None:
        """Parsed from Redis; None when unreadable."""
        try:
            doc = json.loads(raw)
            return cls(int(doc["tokens"]), {str(k): int(v) for k, v in doc["findings"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True, slots=True)
class ScopeShare:
    """Least-privilege progress: how many tokens carry API scopes, and how many did last week."""

    scoped: int
    tokens: int
    previous_scoped: int | None = None
    previous_tokens: int | None = None

    @property
    def percent(self) -> int:
        """The share of tokens with scopes, in whole percent (0 without tokens)."""
        return _percent(self.scoped, self.tokens)

    @property
    def previous_percent(self) -> int | None:
        """Last week's share, when last week's figures included it."""
        if self.previous_scoped is None or self.previous_tokens is None:
            return None
        return _percent(self.previous_scoped, self.previous_tokens)


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


@dataclass(frozen=True, slots=True)
class OwnerTally:
    """One owner's flagged tokens, for the 'worst owners' list."""

    owner: str
    display: str
    principal_type: PrincipalType
    flagged: int
    severity: int
    findings: dict[Finding, int]


@dataclass(frozen=True, slots=True)
class WeeklySummary:
    """Everything the admin summary shows; rendered by a pure function."""

    week: str
    generated_at: datetime
    token_count: int
    workspace_count: int
    totals: dict[Finding, int]
    previous: WeekTotals | None
    by_workspace: dict[str, dict[Finding, int]]
    worst_owners: list[OwnerTally]
    failed_workspaces: list[tuple[str, str]]
    not_in_slack: list[str]
    service_principal_tokens: int
    reminders: ReminderResult | None = None
    attachments_note: str = ""
    in_doubt: list[InDoubt] = field(default_factory=list)  # approved requests with no known outcome
    migration: MigrationProgress | None = None  # service principals from PATs to OAuth; None: not read
    scope_share: ScopeShare | None = None


@dataclass(slots=True)
class SummaryResult:
    """What a summary run did (or, with ``dry_run``, would post)."""

    week: str
    dry_run: bool
    summary: WeeklySummary
    message: Rendered
    channel: str | None = None
    posted: bool = False
    already_posted: bool = False
    ts: str | None = None
    attached: list[str] = field(default_factory=list)
    chart_note: str | None = None  # why no chart was attached, if none was
    problems: list[str] = field(default_factory=list)


DmRenderer = Callable[[OwnerReminder], Rendered]
SummaryRenderer = Callable[[WeeklySummary], Rendered]
