"""The admin summary: the week's figures, the change since last week, and posting it with the report."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.approvals import ApprovalError
from bot.approvals.in_doubt import InDoubt, in_doubt_requests
from bot.errors import ConfigError, GovernanceError
from bot.governance.migration import MigrationState, count_states, fleet_migrations, migration_progress
from bot.governance.models import FINDING_SEVERITY, Finding, FleetReport, TokenAssessment
from bot.report import to_csv
from bot.services import Services
from bot.weekly.chart import chart_available, findings_chart_png
from bot.weekly.chat import Chat, ChatRefused
from bot.weekly.directory import SlackOwners
from bot.weekly.ledger import DEFAULT_LEASE_SECONDS, MARKER_TTL_SECONDS
from bot.weekly.models import (
    OwnerTally,
    ReminderResult,
    ScopeShare,
    SummaryRenderer,
    SummaryResult,
    WeeklySummary,
    WeekTotals,
    iso_week,
)
from bot.weekly.options import SummaryOptions
from bot.weekly.reminders import plan_reminders
from bot.weekly.slack_calls import SlackUnavailable, call_slack
from bot.weekly.sources import audit_now, require_store

log = logging.getLogger(__name__)

TOTALS_TTL_SECONDS = 5 * 7 * 24 * 3600


def owner_tallies(report: FleetReport, limit: int = 10) -> list[OwnerTally]:
    """Owners ranked by the summed severity of their flagged tokens, worst first."""
    groups: dict[str, list[TokenAssessment]] = {}
    for item in report.tokens:
        if item.findings:
            groups.setdefault(item.token.owner.lower(), []).append(item)
    tallies = []
    for items in groups.values():
        first = items[0]
        counts = Counter(f for t in items for f in t.findings)
        tallies.append(
            OwnerTally(
                owner=first.token.owner,
                display=first.owner_display or first.token.owner,
                principal_type=first.principal_type,
                flagged=len(items),
                severity=sum(t.severity for t in items),
                findings=dict(sorted(counts.items(), key=lambda kv: -FINDING_SEVERITY[kv[0]])),
            )
        )
    tallies.sort(key=lambda t: (-t.severity, -t.flagged, t.owner))
    return tallies[:limit]


def week_totals(report: FleetReport) -> WeekTotals:
    """This week's figures, as stored for next week's comparison."""
    return WeekTotals(
        tokens=len(report.tokens),
        findings={f.value: n for f, n in report.totals_by_finding().items()},
    )


def scope_share(report: FleetReport, previous: WeekTotals | None) -> ScopeShare:
    """How many tokens carry API scopes (are not `unscoped`), now and in last week's figures."""
    tokens = len(report.tokens)
    scoped = tokens - report.totals_by_finding()[Finding.UNSCOPED]
    before = previous.findings.get(Finding.UNSCOPED.value) if previous is not None else None
    if previous is None or before is None:  # weeks recorded before scopes were judged have no figure
        return ScopeShare(scoped, tokens)
    return ScopeShare(scoped, tokens, previous.tokens - before, previous.tokens)


def build_summary(
    report: FleetReport,
    week: str,
    *,
    previous: WeekTotals | None,
    not_in_slack: Sequence[str],
    service_principal_tokens: int,
    reminders: ReminderResult | None = None,
    attachments_note: str = "",
    worst: int = 10,
    in_doubt: Sequence[InDoubt] = (),
) -> WeeklySummary:
    """The admin summary's content from the week's audit."""
    return WeeklySummary(
        week=week,
        generated_at=report.generated_at,
        token_count=len(report.tokens),
        workspace_count=len(report.workspaces),
        totals=report.totals_by_finding(),
        previous=previous,
        by_workspace=report.totals_by_workspace(),
        worst_owners=owner_tallies(report, worst),
        failed_workspaces=[(ws.workspace.label, ws.error or "unknown error") for ws in report.failed],
        not_in_slack=sorted(not_in_slack),
        service_principal_tokens=service_principal_tokens,
        reminders=reminders,
        attachments_note=attachments_note,
        in_doubt=list(in_doubt),
        scope_share=scope_share(report, previous),
    )


def delta_text(current: int, previous: int | None) -> str:
    """``+3``, ``-2``, ``±0``, or empty without a previous figure."""
    if previous is None:
        return ""
    diff = current - previous
    return f"+{diff}" if diff > 0 else f"-{-diff}" if diff < 0 else "±0"


def previous_count(previous: WeekTotals | None, finding: Finding) -> int | None:
    """Last week's count of a finding, if last week was recorded."""
    return None if previous is None else previous.findings.get(finding.value, 0)


def _in_doubt(services: Services) -> list[InDoubt]:
    """Requests whose outcome is unknown; none listed (and a warning logged) when the store fails."""
    if services.approvals is None:
        return []
    try:
        return in_doubt_requests(services.approvals)
    except ApprovalError as exc:
        log.warning("summary: could not list requests in doubt (%s)", type(exc).__name__)
        return []


def _totals_key(week: str) -> str:
    return f"patbot:summary:totals:{week}"


def summary(
    services: Services, chat: Chat, render_summary: SummaryRenderer, options: SummaryOptions | None = None
) -> SummaryResult:
    """Post the admin-channel summary with the full CSV (and a chart) in its thread.

    Idempotent per ISO week: a second call in the same week posts nothing (``already_posted``), unless
    `options.force` posts again on purpose.
    """
    o = options or SummaryOptions()
    dry_run, now, report, reminders, owners = o.dry_run, o.now, o.report, o.reminders, o.owners
    force, chart, sleep = o.force, o.chart, o.sleep
    channel = services.settings.admin_channel
    if channel is None and not dry_run:
        raise ConfigError("PATBOT_ADMIN_CHANNEL is required but not set")
    store = require_store(services)
    moment = now or services.clock()
    tz = services.settings.timezone
    week = iso_week(moment, tz)
    report = report if report is not None else audit_now(services, moment)
    if reminders is not None:
        not_in_slack = list(reminders.not_in_slack)
        principal_tokens = len(reminders.service_principal_tokens)
    else:
        planned, principals = plan_reminders(report, week)
        directory = owners or SlackOwners(chat, store, sleep=sleep)
        _, not_in_slack = directory.resolve(r.email for r in planned)
        principal_tokens = len(principals)
    raw_previous = store.get(_totals_key(iso_week(moment - timedelta(days=7), tz)))
    previous = WeekTotals.from_json(raw_previous) if raw_previous else None

    # A dry run only says whether a chart would be attached; rendering it costs a matplotlib import.
    png = findings_chart_png(report) if chart and not dry_run else None
    has_findings = any(n for f, n in report.totals_by_finding().items() if f is not Finding.UNSCOPED)
    would_chart = png is not None or (dry_run and chart and has_findings and chart_available())
    chart_note = None
    if not would_chart:
        chart_note = (
            "chart disabled"
            if not chart
            else "no findings to chart"
            if not has_findings
            else "no chart: matplotlib is not installed"
        )
    note = "The full report (CSV)" + (" and a chart are" if would_chart else " is") + " in the thread."
    content = build_summary(
        report,
        week,
        previous=previous,
        not_in_slack=not_in_slack,
        service_principal_tokens=principal_tokens,
        reminders=reminders,
        attachments_note=note,
        in_doubt=_in_doubt(services),
    )
    content = with_migration(
        content, report, store.get(_migration_key(iso_week(moment - timedelta(days=7), tz)))
    )
    message = render_summary(content)
    result = SummaryResult(
        week=week, dry_run=dry_run, summary=content, message=message, channel=channel, chart_note=chart_note
    )
    if dry_run or channel is None:
        return result

    once_key = f"patbot:summary:{week}"
    # A forced post claims nothing, so failing it never frees a week that was already posted.
    claimed = not force and bool(store.set(once_key, "posting", nx=True, ex=int(DEFAULT_LEASE_SECONDS)))
    if not force and not claimed:
        result.already_posted = True
        return result
    try:
        posted = call_slack(
            lambda: chat.post_message(channel, message.text, message.blocks),
            "chat.postMessage",
            sleep=sleep,
        )
    except ChatRefused as exc:
        if claimed:
            store.delete(once_key)
        raise SlackUnavailable(
            f"Slack answered {exc.error} when posting to PATBOT_ADMIN_CHANNEL {channel}"
            + ("; invite patbot to the channel" if exc.error == "not_in_channel" else "")
        ) from None
    except BaseException:
        if claimed:
            store.delete(once_key)
        raise
    result.posted = True
    result.ts = str(posted.get("ts") or "") or None
    store.set(once_key, "posted", ex=MARKER_TTL_SECONDS)
    store.set(_totals_key(week), week_totals(report).to_json(), ex=TOTALS_TTL_SECONDS)
    store_migration_counts(store, week, report)
    _attach(chat, result, to_csv(report), png, sleep)
    return result


# ------------------------------------------------------------------------- service principals to OAuth


def _migration_key(week: str) -> str:
    return f"patbot:summary:migration:{week}"


def migration_counts_from_json(raw: str | bytes | None) -> dict[MigrationState, int] | None:
    """Last week's principals per migration state, as stored; None when absent or unreadable."""
    if not raw:
        return None
    try:
        doc = json.loads(raw)
        return {state: int(doc.get(state.value, 0)) for state in MigrationState}
    except (ValueError, TypeError, AttributeError):
        return None


def with_migration(content: WeeklySummary, report: FleetReport, previous_raw: Any) -> WeeklySummary:
    """The summary with the service principals' migration to OAuth, when the audit read their secrets."""
    migrations = fleet_migrations(report)
    if migrations is None:
        return content
    previous = migration_counts_from_json(previous_raw if isinstance(previous_raw, str | bytes) else None)
    return replace(content, migration=migration_progress(migrations, previous))


def store_migration_counts(store: Any, week: str, report: FleetReport) -> None:
    """Keep this week's principals per state for next week's comparison (nothing when not read)."""
    migrations = fleet_migrations(report)
    if migrations is None:
        return
    counts: Mapping[MigrationState, int] = count_states(migrations)
    doc = json.dumps({state.value: n for state, n in counts.items()}, sort_keys=True)
    store.set(_migration_key(week), doc, ex=TOTALS_TTL_SECONDS)


def _attach(
    chat: Chat, result: SummaryResult, csv_text: str, png: bytes | None, sleep: Callable[[float], None]
) -> None:
    files: list[dict[str, Any]] = [
        {
            "content": csv_text,
            "filename": f"patbot-tokens-{result.week}.csv",
            "title": f"Databricks tokens, {result.week}",
        }
    ]
    if png is not None:
        files.append(
            {"file": png, "filename": f"patbot-findings-{result.week}.png", "title": "Findings by workspace"}
        )
    try:
        call_slack(
            lambda: chat.upload_files(result.channel or "", result.ts or "", files),
            "files upload",
            sleep=sleep,
        )
    except ChatRefused as exc:
        result.problems.append(f"could not attach the report files: Slack answered {exc.error}")
        return
    except GovernanceError as exc:
        result.problems.append(f"could not attach the report files: {exc.user_message}")
        return
    except Exception as exc:  # e.g. the upload URL refused the bytes
        log.warning("report upload failed", exc_info=True)
        result.problems.append(f"could not attach the report files ({type(exc).__name__})")
        return
    result.attached = [str(f["filename"]) for f in files]
