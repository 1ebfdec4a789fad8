"""Block Kit for the weekly job: the owner's reminder DM and the admin summary. Pure functions."""

from __future__ import annotations

from bot.governance.findings import suggested_scopes
from bot.governance.labels import finding_label, worst_first
from bot.governance.migration import STATE_LABELS, MigrationProgress
from bot.governance.models import PrincipalType
from bot.weekly import (
    FlaggedToken,
    OwnerReminder,
    Rendered,
    ScopeShare,
    WeeklySummary,
    delta_text,
    previous_count,
)
from handlers.blocks import (
    ACTION_NARROW_OWN,
    ACTION_REVOKE_OWN,
    MAX_BLOCKS,
    MAX_COMMENT_CHARS,
    MAX_SECTION_CHARS,
    Block,
    clip_words,
    context,
    counts_text,
    escape,
    header,
    section,
    slack_date,
    token_line,
)
from handlers.scope_text import scopes_text

MAX_DM_TOKENS = 20
MAX_SUMMARY_WORKSPACES = 25
MAX_NOT_IN_SLACK = 40
MAX_IN_DOUBT = 10
MAX_PROPOSALS = 10
MAX_DM_NARROW = 10
MAX_BUTTON_CHARS = 75


def revoke_button(token_id: str) -> Block:
    """The owner's Revoke button: its value is the token ID and nothing else."""
    return {
        "type": "button",
        "action_id": ACTION_REVOKE_OWN,
        "text": {"type": "plain_text", "text": "Revoke"},
        "style": "danger",
        "value": token_id,
    }


def narrow_button(token_id: str, to: str) -> Block:
    """The owner's "Narrow to …" button: its value is the token ID; the scopes are worked out on click."""
    label = f"Narrow to {to}"
    return {
        "type": "button",
        "action_id": ACTION_NARROW_OWN,
        "text": {"type": "plain_text", "text": clip_words(label, MAX_BUTTON_CHARS)},
        "value": token_id,
    }


def _narrow_blocks(tokens: tuple[FlaggedToken, ...]) -> list[Block]:
    blocks = [
        section(
            "*Can be narrowed*: Databricks saw these tokens use less than they may call. *Narrow* keeps "
            "only what each one uses (you confirm first)."
        )
    ]
    for item in tokens[:MAX_DM_NARROW]:
        token = item.assessment.token
        to = scopes_text([s.text for s in suggested_scopes(token)])
        comment = f" “{escape(clip_words(token.comment, MAX_COMMENT_CHARS))}”" if token.comment else ""
        block = section(
            f"`{token.short_id}` in *{escape(item.workspace)}*{comment}\n{scopes_text(token.scopes)} → {to}"
        )
        block["accessory"] = narrow_button(token.token_id, to)
        blocks.append(block)
    if len(tokens) > MAX_DM_NARROW:
        blocks.append(
            context(f"…and {len(tokens) - MAX_DM_NARROW} more can be narrowed: `/pat audit` lists them.")
        )
    return blocks


def reminder_message(reminder: OwnerReminder) -> Rendered:
    """The weekly DM: each stale or non-expiring token with all its findings and a Revoke button."""
    count = len(reminder.tokens)
    greeting = f"Hi <@{reminder.user_id}>, you" if reminder.user_id else "You"
    blocks: list[Block] = [
        header("Databricks tokens to clean up"),
        section(
            f"{greeting} hold *{count}* Databricks personal access token(s) that are stale (not used "
            "recently) or never expire. Revoke the ones you no longer need; replace the others with "
            "tokens that expire."
        ),
    ]
    for item in reminder.tokens[:MAX_DM_TOKENS]:
        block = section(token_line(item.assessment, item.workspace))
        block["accessory"] = revoke_button(item.assessment.token.token_id)
        blocks.append(block)
    if count > MAX_DM_TOKENS:
        blocks.append(context(f"…and {count - MAX_DM_TOKENS} more: `/pat audit` lists them all."))
    if reminder.narrowable:
        blocks += _narrow_blocks(reminder.narrowable)
    if reminder.other_flagged:
        blocks.append(
            context(
                f"{reminder.other_flagged} other token(s) of yours have findings: `/pat audit` shows them."
            )
        )
    blocks.append(
        context(
            f"Weekly reminder for {escape(reminder.week)} · Revoke asks you to confirm first · "
            "Databricks revokes a token unused for 90 days by itself."
        )
    )
    text = f"You hold {count} Databricks token(s) that are stale or never expire."
    return Rendered(text=text, blocks=blocks[:MAX_BLOCKS])


def _counted(label: str, current: int, previous: int | None) -> str:
    change = delta_text(current, previous)
    return f"{label}: *{current}*" + (f" ({change})" if change else "")


def _lines_section(title: str, lines: list[str], more: str = "") -> Block:
    """A titled list clipped at a line boundary to Block Kit's section limit."""
    budget = MAX_SECTION_CHARS - len(title) - 80
    kept: list[str] = []
    for line in lines:
        if sum(len(k) + 1 for k in kept) + len(line) > budget:
            break
        kept.append(line)
    dropped = len(lines) - len(kept)
    tail = f"\n…and {dropped} more{more}." if dropped else ""
    return section(f"*{title}*\n" + "\n".join(kept) + tail)


def scope_share_line(share: ScopeShare) -> str:
    """ "With API scopes: *12* of 40 tokens (30%, +5 points since last week)"."""
    figures = f"{share.percent}%"
    before = share.previous_percent
    if before is not None:
        figures += f", {delta_text(share.percent, before)} points since last week"
    return f"With API scopes: *{share.scoped}* of {share.tokens} tokens ({figures})"


def summary_message(summary: WeeklySummary) -> Rendered:
    """The admin-channel summary: totals, change since last week, worst owners, gaps."""
    previous = summary.previous
    stamp = slack_date(summary.generated_at, "{date_short_pretty} {time}")
    since = "change since last week in brackets" if previous else "no figures from last week to compare"
    headline = (
        _counted("Tokens", summary.token_count, previous.tokens if previous else None)
        + f" in *{summary.workspace_count}* workspace(s) · _{since}_"
    )
    if summary.scope_share is not None and summary.scope_share.tokens:
        headline += "\n" + scope_share_line(summary.scope_share)
    blocks: list[Block] = [header(f"Weekly token report · {summary.week}"), section(headline)]
    finding_lines = [
        "• " + _counted(finding_label(f), summary.totals[f], previous_count(previous, f))
        for f in worst_first(summary.totals)
        if summary.totals[f] or (previous_count(previous, f) or 0)
    ]
    blocks.append(_lines_section("By finding", finding_lines or ["• no findings :tada:"]))

    ranked = sorted(summary.by_workspace.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    ws_lines = [
        f"• *{escape(label)}*: " + (counts_text(counts) or "clean")
        for label, counts in ranked[:MAX_SUMMARY_WORKSPACES]
    ]
    if ws_lines:
        more = len(ranked) - len(ws_lines)
        if more > 0:
            ws_lines.append(f"_…and {more} more workspace(s), in the CSV_")
        blocks.append(_lines_section("By workspace", ws_lines, " in the CSV"))

    if summary.failed_workspaces:
        lines = [f"• *{escape(label)}*: {escape(error)}" for label, error in summary.failed_workspaces]
        blocks.append(_lines_section(":warning: Workspaces that could not be read", lines))

    if summary.worst_owners:
        lines = []
        for rank, owner in enumerate(summary.worst_owners, start=1):
            kind = " (service principal)" if owner.principal_type is PrincipalType.SERVICE_PRINCIPAL else ""
            name = escape(owner.display)
            email = f" · {escape(owner.owner)}" if owner.owner != owner.display else ""
            counts = counts_text(owner.findings)
            lines.append(f"{rank}. *{name}*{email}{kind}: {owner.flagged} token(s) · {counts}")
        blocks.append(_lines_section("Worst owners", lines))

    if summary.service_principal_tokens:
        blocks.append(
            section(
                f"*{summary.service_principal_tokens}* service-principal token(s) are stale or never "
                "expire. Nobody is DMed for them: rotate them with `/pat rotate &lt;id&gt;`."
            )
        )

    if summary.migration is not None:
        blocks.extend(migration_blocks(summary.migration))

    if summary.not_in_slack:
        shown = [escape(e) for e in summary.not_in_slack[:MAX_NOT_IN_SLACK]]
        rest = len(summary.not_in_slack) - len(shown)
        lines = [", ".join(shown) + (f" …and {rest} more" if rest > 0 else "")]
        blocks.append(
            _lines_section(
                f"Owners not found in Slack ({len(summary.not_in_slack)}): no reminder was sent", lines
            )
        )

    if summary.in_doubt:
        lines = [
            f"• `{escape(item.request.id)}` {escape(item.request.kind)}, approved by <@{escape(item.request.decided_by or '')}>"
            f" {slack_date(item.request.decided_at, '{date_short_pretty}')}: not known {escape(item.not_known)}"
            for item in summary.in_doubt[:MAX_IN_DOUBT]
        ]
        if len(summary.in_doubt) > MAX_IN_DOUBT:
            lines.append(f"_…and {len(summary.in_doubt) - MAX_IN_DOUBT} more: `patbot log --in-doubt`_")
        blocks.append(
            _lines_section(
                f":warning: Requests in doubt ({len(summary.in_doubt)}): interrupted, never retried by patbot",
                lines,
            )
        )

    reminders = summary.reminders
    if reminders is not None:
        parts = [
            f"{len(reminders.sent)} reminder DM(s) sent",
            f"{len(reminders.skipped_already_sent)} already sent this week",
        ]
        if reminders.failed:
            parts.append(f"{len(reminders.failed)} failed (retried on the next run)")
        if reminders.in_doubt:
            parts.append(f"{len(reminders.in_doubt)} in doubt (not resent)")
        blocks.append(context(" · ".join(parts)))

    blocks.append(context(f"{summary.attachments_note} Audited {stamp}.".strip()))
    flagged = sum(1 for n in summary.totals.values() if n)
    text = (
        f"Weekly token report {summary.week}: {summary.token_count} tokens, "
        f"{flagged} kinds of finding, {len(summary.failed_workspaces)} workspace(s) unreadable."
    )
    return Rendered(text=text, blocks=blocks[:MAX_BLOCKS])


def migration_blocks(progress: MigrationProgress) -> list[Block]:
    """Service principals from PATs to OAuth: principals per state (change since last week) and the
    migrated ones whose PATs can go."""
    previous = progress.previous
    parts = [
        _counted(STATE_LABELS[state], n, previous.get(state, 0) if previous is not None else None)
        for state, n in progress.counts.items()
    ]
    blocks: list[Block] = [
        section("*Service principals, PATs → OAuth* (per workspace)\n" + " · ".join(parts)),
    ]
    if progress.proposals:
        lines = []
        for item in progress.proposals[:MAX_PROPOSALS]:
            ids = ", ".join(f"`{p.token.short_id}`" for p in item.pats)
            since = item.standing.migrated_on.isoformat() if item.standing.migrated_on else "?"
            lines.append(
                f"• *{escape(item.principal.display_name)}* in {escape(item.workspace)}: on OAuth since "
                f"{since}, its PATs unused since then: {ids}"
            )
        more = len(progress.proposals) - MAX_PROPOSALS
        if more > 0:
            lines.append(f"_…and {more} more: `patbot audit --format json` lists them_")
        blocks.append(
            _lines_section("Proposed: revoke these PATs (`/pat revoke &lt;id&gt;`, through approval)", lines)
        )
    return blocks
