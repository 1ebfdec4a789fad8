"""The owners' reminder DMs: who gets one this ISO week, and sending them exactly once."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from bot.governance.findings import suggested_scopes
from bot.governance.models import Finding, FleetReport, PrincipalType
from bot.services import Services
from bot.weekly.campaign import Campaign, Status, run_campaign
from bot.weekly.chat import Chat
from bot.weekly.directory import SlackOwners
from bot.weekly.ledger import Claim, ReminderLedger
from bot.weekly.models import DmRenderer, FlaggedToken, OwnerReminder, ReminderResult, iso_week
from bot.weekly.options import RemindOptions
from bot.weekly.pacing import RatePacer
from bot.weekly.sources import audit_now, require_store

log = logging.getLogger(__name__)

DM_FINDINGS = frozenset({Finding.STALE, Finding.NON_EXPIRING})
"""A token with one of these earns its owner the weekly DM."""


def plan_reminders(report: FleetReport, week: str) -> tuple[list[OwnerReminder], list[FlaggedToken]]:
    """One reminder per user owning a stale or non-expiring token; service principals' such tokens apart.

    Each reminder also carries its owner's tokens that can be narrowed to what they use (`overscoped`
    with something to narrow to), whether or not they are listed for being stale or non-expiring.
    """
    labels = {ws.workspace.host: ws.workspace.label for ws in report.workspaces}
    listed: dict[str, list[FlaggedToken]] = {}
    narrowable: dict[str, list[FlaggedToken]] = {}
    others: Counter[str] = Counter()
    display: dict[str, str] = {}
    principals: list[FlaggedToken] = []
    for item in report.tokens:  # worst first
        flagged = FlaggedToken(item, labels.get(item.token.workspace, item.token.workspace))
        dm_worthy = not DM_FINDINGS.isdisjoint(item.findings)
        if item.principal_type is not PrincipalType.USER:
            if dm_worthy:
                principals.append(flagged)
            continue
        email = item.token.owner.strip().lower()
        display.setdefault(email, item.owner_display or item.token.owner)
        if dm_worthy:
            listed.setdefault(email, []).append(flagged)
        elif item.findings:
            others[email] += 1
        if Finding.OVERSCOPED in item.findings and suggested_scopes(item.token):
            narrowable.setdefault(email, []).append(flagged)
    reminders = [
        OwnerReminder(
            email,
            display[email],
            tuple(tokens),
            week,
            other_flagged=others[email],
            narrowable=tuple(narrowable.get(email, ())),
        )
        for email, tokens in sorted(listed.items())
    ]
    return reminders, principals


def remind(
    services: Services, chat: Chat, render_dm: DmRenderer, options: RemindOptions | None = None
) -> ReminderResult:
    """Send this ISO week's reminder DMs: one per owner holding a stale or non-expiring token.

    Idempotent per week and owner across restarts and concurrent runs.
    """
    o = options or RemindOptions()
    dry_run, now, report, owners, sleep = o.dry_run, o.now, o.report, o.owners, o.sleep
    store = require_store(services)
    moment = now or services.clock()
    week = iso_week(moment, services.settings.timezone)
    report = report if report is not None else audit_now(services, moment)
    reminders, principal_tokens = plan_reminders(report, week)
    directory = owners or SlackOwners(chat, store, sleep=sleep)
    calls_before = directory.calls.value
    found, missing = directory.resolve(r.email for r in reminders)
    result = ReminderResult(
        week=week,
        dry_run=dry_run,
        not_in_slack=missing,
        service_principal_tokens=principal_tokens,
        unreadable_workspaces={ws.workspace.label: ws.error or "unknown error" for ws in report.failed},
    )
    targets = [replace(r, user_id=found[r.email]) for r in reminders if r.email in found]
    ledger = ReminderLedger(store, week, run_id=o.run_id, lease_seconds=o.lease_seconds, wall=o.wall)
    if dry_run:
        for reminder in targets:
            state = ledger.peek(reminder.email)
            if state is Claim.SENT:
                result.skipped_already_sent.append(reminder.email)
            elif state is Claim.IN_DOUBT:
                result.in_doubt.append(reminder.email)
            else:
                result.planned.append(reminder)
        result.slack_calls = directory.calls.value - calls_before
        return result

    campaign = Campaign(
        chat,
        ledger,
        RatePacer(o.rate_per_minute, clock=o.clock, sleep=sleep),
        render_dm,
    )
    outcomes = run_campaign(campaign, targets, o)
    for reminder in targets:
        outcome = outcomes[reminder.email]
        if outcome.status is Status.ALREADY_SENT:
            result.skipped_already_sent.append(reminder.email)
            continue
        result.planned.append(reminder)
        if outcome.status is Status.SENT:
            result.sent.append(reminder.email)
        elif outcome.status is Status.IN_DOUBT:
            result.in_doubt.append(reminder.email)
        elif outcome.status is Status.HELD:
            result.in_progress_elsewhere.append(reminder.email)
        else:
            result.failed[reminder.email] = outcome.detail
    result.slack_calls = directory.calls.value - calls_before + campaign.calls.value
    log.info(
        "reminders %s: %d sent, %d already sent, %d not in Slack, %d failed, %d in doubt",
        week,
        len(result.sent),
        len(result.skipped_already_sent),
        len(result.not_in_slack),
        len(result.failed),
        len(result.in_doubt),
    )
    return result


def dm_lines(reminder: OwnerReminder) -> list[str]:
    """Plain-text lines describing one planned DM (for ``--dry-run`` output)."""
    head = f"{reminder.email} ({reminder.user_id or 'not in Slack'}): {len(reminder.tokens)} token(s)"
    lines = [head]
    for item in reminder.tokens:
        findings = ", ".join(f.value for f in item.assessment.findings)
        lines.append(f"  {item.assessment.token.short_id} in {item.workspace} [{findings}]")
    for item in reminder.narrowable:
        to = ",".join(s.text for s in suggested_scopes(item.assessment.token))
        lines.append(f"  {item.assessment.token.short_id} in {item.workspace} can be narrowed to {to}")
    return lines
