"""Block Kit rendering: pure functions returning dicts. Never calls an API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from bot.governance.labels import FINDING_LABELS, counts_worst_first, finding_label, worst_first
from bot.governance.lifetime import AutoRevocationState, auto_revocation
from bot.governance.models import Finding, FleetReport, Posture, TokenAssessment, WorkspaceReport

Block = dict[str, Any]

ACTION_REVOKE_OWN = "pat_revoke_own"
ACTION_REVOKE_ROTATED = "pat_revoke_rotated"
ACTION_REVOKE_MIGRATED = "pat_revoke_migrated"
ACTION_NARROW_OWN = "pat_narrow_own"

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_TOKEN_ROWS = 20
MAX_HOME_TOKENS = 90  # a Home view holds 100 blocks
MAX_COMMENT_CHARS = 80

__all__ = [  # FINDING_LABELS moved to bot.governance.labels; imported from here by older callers
    "ACTION_NARROW_OWN",
    "ACTION_REVOKE_OWN",
    "FINDING_LABELS",
    "MAX_BLOCKS",
    "MAX_HOME_TOKENS",
    "MAX_SECTION_CHARS",
    "MAX_TOKEN_ROWS",
    "Block",
    "auto_revocation_text",
    "clip_words",
    "context",
    "counts_text",
    "error_blocks",
    "escape",
    "failed_workspaces_block",
    "findings_text",
    "fleet_audit_blocks",
    "header",
    "help_blocks",
    "home_view",
    "own_audit_blocks",
    "plain_section",
    "policy_lines",
    "posture_line",
    "section",
    "slack_date",
    "token_line",
]


def escape(text: str) -> str:
    """Escape user-controlled text for mrkdwn: no mentions, `<!channel>` or links can be injected."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(moment: datetime | None, token: str = "{date_short}", never: str = "never") -> str:
    """A `<!date^…>` stamp each reader sees in their own time zone, with a UTC fallback."""
    if moment is None:
        return never
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{token}|{fallback}>"


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_words(text: str, limit: int) -> str:
    """User text shortened to *limit* characters at a word boundary, with "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:  # a word boundary not too far back; else cut mid-word rather than lose half
        cut = cut[:space]
    return cut.rstrip() + "…"


def plain_section(text: str) -> Block:
    """A plain_text section: user text shown exactly as typed (no formatting, mentions or emoji)."""
    return {"type": "section", "text": {"type": "plain_text", "text": _clip(text), "emoji": False}}


def section(text: str) -> Block:
    """A mrkdwn section, clipped to Block Kit's 3000 characters."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def context(text: str) -> Block:
    """A small grey context line."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}


def header(text: str) -> Block:
    """A plain-text header (150 characters at most)."""
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def findings_text(findings: Sequence[Finding]) -> str:
    """Findings as short words, worst first (the summary's order), or a reassurance."""
    return ", ".join(finding_label(f) for f in worst_first(findings)) if findings else "no findings"


def counts_text(counts: Mapping[Finding, int]) -> str:
    """`never expires 3, stale 1`: non-zero counts per finding, worst first."""
    return ", ".join(f"{finding_label(f)} {n}" for f, n in counts_worst_first(counts))


def auto_revocation_text(item: TokenAssessment) -> str:
    """What is true about Databricks revoking the token for inactivity, in a few words."""
    status = auto_revocation(item)
    if status.state is AutoRevocationState.EXPIRED:
        return "no longer usable"  # the line already says when it expired
    if status.state is AutoRevocationState.DUE:
        return f"past Databricks' {status.limit_days}-day inactivity limit: due for automatic revocation"
    days = status.days_left
    return f"auto-revoked in {days} day{'s' if days != 1 else ''} unless used"


def token_line(item: TokenAssessment, workspace_label: str, *, show_owner: bool = False) -> str:
    """One token in one mrkdwn paragraph."""
    t = item.token
    owner = f" · {escape(item.owner_display or t.owner)}" if show_owner else ""
    comment = f" “{escape(clip_words(t.comment, MAX_COMMENT_CHARS))}”" if t.comment else ""
    expired = Finding.EXPIRED in item.findings
    if t.expires is None:
        expires = "*never expires*"
    else:
        expires = f"{'expired' if expired else 'expires'} {slack_date(t.expires)}"
    used = f"last used {slack_date(_day(t.last_used))}" if t.last_used else "never used"
    flags = findings_text(item.findings)
    return (
        f"`{t.short_id}` in *{escape(workspace_label)}*{owner}{comment}\n"
        f"{expires} · {used} · {auto_revocation_text(item)} · _{flags}_"
    )


def _day(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _labels(report: FleetReport) -> dict[str, str]:
    return {ws.workspace.host: ws.workspace.label for ws in report.workspaces}


def failed_workspaces_block(failed: Sequence[WorkspaceReport]) -> Block | None:
    """A warning naming the workspaces that could not be read, or None."""
    if not failed:
        return None
    lines = [f"• *{escape(ws.workspace.label)}*: {escape(ws.error or 'unknown error')}" for ws in failed]
    return section(":warning: Could not read these workspaces; the rest is shown:\n" + "\n".join(lines))


def help_blocks(is_approver: bool) -> list[Block]:
    """Usage of `/pat`, with the approver-only commands for approvers."""
    lines = [
        "*`/pat audit`* — your tokens across all workspaces, with findings",
        "*`/pat revoke <id> [reason]`* — revoke a token (others' tokens need an approver)",
        "*`/pat create <service-principal> <lifetime> [workspace=<ws>] [scopes=<s1,s2,…>] [autoscope] "
        "[comment]`* — via approval",
        "*`/pat rotate <id>`* — replace a token (service principals via approval)",
        "*`/pat migrate <service-principal> [workspace=<ws>]`* — move it from PATs to OAuth, via approval",
        "*`/pat scope <id> <s1,s2,…>`* | *`suggested`* — change a token's API scopes (narrowing your own "
        "after you confirm; anything else via approval)",
        "*`/pat help`* — this message",
    ]
    if is_approver:
        lines += [
            "",
            "_Approvers:_",
            "*`/pat audit all`* | *`@user`* | *`<workspace>`* — fleet view, full CSV sent to your DM",
            "*`/pat policy`* — token settings of each workspace",
            "*`/pat policy max-lifetime <days>`* — change the maximum token lifetime, via approval",
        ]
    lines.append("\n`<id>` is a token ID or a unique prefix of at least 8 characters.")
    return [section("\n".join(lines))]


def own_audit_blocks(report: FleetReport, email: str) -> list[Block]:
    """A user's own tokens, worst first, within Block Kit limits."""
    tokens = report.tokens
    labels = _labels(report)
    blocks: list[Block] = [header("Your Databricks tokens")]
    if not tokens:
        blocks.append(
            section(f"No personal access tokens owned by {escape(email)} in the governed workspaces.")
        )
    else:
        flagged = sum(1 for t in tokens if t.findings)
        blocks.append(
            section(f"{len(tokens)} token(s) owned by {escape(email)}; {flagged} with findings. Worst first:")
        )
        blocks += _token_sections(
            tokens, labels, show_owner=False, limit=MAX_TOKEN_ROWS, more="on patbot's Home tab"
        )
    failed = failed_workspaces_block(report.failed)
    if failed:
        blocks.append(failed)
    blocks.append(context(f"Audited {slack_date(report.generated_at, '{date_short_pretty} {time}')}"))
    return blocks[:MAX_BLOCKS]


def _token_sections(
    tokens: Sequence[TokenAssessment],
    labels: dict[str, str],
    *,
    show_owner: bool,
    limit: int,
    more: str = "in the CSV report",
) -> list[Block]:
    blocks = [
        section(token_line(t, labels.get(t.token.workspace, t.token.workspace), show_owner=show_owner))
        for t in tokens[:limit]
    ]
    if len(tokens) > limit:
        blocks.append(context(f"…and {len(tokens) - limit} more, {more}."))
    return blocks


def fleet_audit_blocks(report: FleetReport, scope: str, *, csv_sent: bool) -> list[Block]:
    """The fleet view: totals by finding and by workspace, worst tokens first."""
    tokens = report.tokens
    totals = report.totals_by_finding()
    total_line = (
        " · ".join(f"{finding_label(f)}: *{n}*" for f, n in counts_worst_first(totals)) or "no findings"
    )
    blocks: list[Block] = [
        header(f"Token audit: {scope}"[:150]),
        section(f"*{len(tokens)}* token(s) in *{len(report.workspaces)}* workspace(s)\n{total_line}"),
    ]
    ws_lines = []
    for label, counts in report.totals_by_workspace().items():
        ws_lines.append(f"• *{escape(label)}*: {counts_text(counts) or 'clean'}")
    if ws_lines:
        blocks.append(section("*By workspace*\n" + _clip("\n".join(ws_lines), MAX_SECTION_CHARS - 20)))
    failed = failed_workspaces_block(report.failed)
    if failed:
        blocks.append(failed)
    worst = [t for t in tokens if t.findings]
    if worst:
        blocks.append(section("*Worst tokens*"))
        blocks += _token_sections(worst, _labels(report), show_owner=True, limit=15)
    note = (
        "The full report is in your DM as a CSV file." if csv_sent else "No CSV was sent (nothing to send)."
    )
    blocks.append(context(f"{note} Audited {slack_date(report.generated_at, '{date_short_pretty} {time}')}"))
    return blocks[:MAX_BLOCKS]


def home_view(report: FleetReport | None, email: str | None, problem: str | None = None) -> dict[str, Any]:
    """The App Home tab: the user's tokens with a Revoke button each."""
    blocks: list[Block] = [header("Your Databricks personal access tokens")]
    if problem is not None or report is None:
        blocks.append(section(problem or "Nothing to show."))
        return {"type": "home", "blocks": blocks}
    tokens = report.tokens
    labels = _labels(report)
    if not tokens:
        blocks.append(
            section(f"You ({escape(email or '')}) own no tokens in the governed workspaces. :tada:")
        )
    for item in tokens[: MAX_TOKEN_ROWS * 2 - 5]:
        block = section(token_line(item, labels.get(item.token.workspace, item.token.workspace)))
        block["accessory"] = {
            "type": "button",
            "action_id": ACTION_REVOKE_OWN,
            "text": {"type": "plain_text", "text": "Revoke"},
            "style": "danger",
            "value": item.token.token_id,
        }
        blocks.append(block)
    if len(tokens) > MAX_HOME_TOKENS:
        blocks.append(
            context(f"…and {len(tokens) - MAX_HOME_TOKENS} more; ask an approver for the CSV report.")
        )
    failed = failed_workspaces_block(report.failed)
    if failed:
        blocks.append(failed)
    blocks.append(context(f"Updated {slack_date(report.generated_at, '{date_short_pretty} {time}')}"))
    return {"type": "home", "blocks": blocks[:100]}


def posture_line(label: str, posture: Posture | str, max_days: int) -> str:
    """One workspace's token settings in plain words (a string posture is why it could not be read)."""
    name = f"• *{escape(label)}*"
    if isinstance(posture, str):
        return f"{name}: could not read ({escape(posture)})"
    if not posture.tokens_enabled:
        return f"{name}: personal access tokens turned off"
    days = posture.max_token_lifetime_days
    if posture.max_lifetime_set:
        limit = f"new tokens live at most {days} days"
    else:
        limit = f"no maximum set, so Databricks lets new tokens live up to {days} days"
    warn = f" :warning: above patbot's maximum of {max_days} days" if days > max_days else ""
    return f"{name}: personal access tokens allowed; {limit}{warn}"


def policy_lines(postures: Mapping[str, Posture | str], max_days: int) -> list[str]:
    """`/pat policy`: one plain-words line per workspace label, in the order given.

    A string instead of a posture is the reason that workspace could not be read.
    """
    return [posture_line(label, posture, max_days) for label, posture in postures.items()]


def error_blocks(message: str) -> list[Block]:
    """A short failure message."""
    return [section(f":x: {message}")]
