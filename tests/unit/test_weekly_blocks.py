"""The weekly DM and admin summary as Block Kit: limits, escaping, Revoke buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.governance.models import Finding, PrincipalType, Token, TokenAssessment
from bot.weekly import (
    FlaggedToken,
    OwnerReminder,
    OwnerTally,
    ReminderResult,
    WeeklySummary,
    WeekTotals,
    delta_text,
)
from handlers.blocks import ACTION_REVOKE_OWN, MAX_BLOCKS, MAX_SECTION_CHARS
from handlers.weekly_blocks import MAX_DM_TOKENS, reminder_message, summary_message

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WEEK = "2025-W10"


def flagged(n: int, *, comment: str = "local dev", workspace: str = "prod") -> FlaggedToken:
    token = Token(
        token_id=f"{n:04d}" + "ab" * 14,
        workspace="https://prod.example.com",
        owner="alice@example.com",
        owner_id=1,
        comment=comment,
        created=NOW - timedelta(days=200),
        expires=None,
        last_used=(NOW - timedelta(days=40)).date(),
    )
    item = TokenAssessment(
        token=token,
        principal_type=PrincipalType.USER,
        findings=(Finding.NON_EXPIRING, Finding.STALE, Finding.UNROTATED),
        days_until_auto_revoke=50,
        owner_display="Alice",
    )
    return FlaggedToken(item, workspace)


def reminder(count: int, **kwargs: Any) -> OwnerReminder:
    tokens = tuple(flagged(n, **kwargs) for n in range(count))
    return OwnerReminder("alice@example.com", "Alice", tokens, WEEK, user_id="U0ALICE", other_flagged=2)


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
        out += [e["text"] for e in block.get("elements", []) if "text" in e]
    return out


def assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        for text in texts([block]):
            assert len(text) <= MAX_SECTION_CHARS


def test_reminder_lists_each_token_with_a_revoke_button_carrying_only_its_id() -> None:
    message = reminder_message(reminder(3))
    buttons = [b["accessory"] for b in message.blocks if "accessory" in b]
    assert [b["value"] for b in buttons] == [t.assessment.token.token_id for t in reminder(3).tokens]
    assert all(b["action_id"] == ACTION_REVOKE_OWN and b["type"] == "button" for b in buttons)
    assert all(set(b) == {"type", "action_id", "text", "style", "value"} for b in buttons)
    body = "\n".join(texts(message.blocks))
    assert "<@U0ALICE>" in body and "*3*" in body
    assert "never expires" in body and "stale" in body and "not rotated" in body, "other findings shown too"
    assert "2 other token(s)" in body and WEEK in body
    assert message.text == "You hold 3 Databricks token(s) that are stale or never expire."
    assert_within_limits(message.blocks)


def test_a_long_reminder_stays_within_block_kit_limits() -> None:
    message = reminder_message(reminder(75, comment="x" * 500, workspace="w" * 400))
    assert_within_limits(message.blocks)
    assert sum(1 for b in message.blocks if "accessory" in b) == MAX_DM_TOKENS
    assert "…and 55 more" in "\n".join(texts(message.blocks))


def test_user_controlled_text_is_escaped() -> None:
    message = reminder_message(reminder(1, comment="<!channel> <@U999|boss> & co", workspace="<evil>"))
    body = "\n".join(texts(message.blocks))
    assert "<!channel>" not in body and "<@U999" not in body and "<evil>" not in body
    assert "&lt;!channel&gt;" in body and "&amp; co" in body and "&lt;evil&gt;" in body


def summary_of(**overrides: Any) -> WeeklySummary:
    values: dict[str, Any] = {
        "week": WEEK,
        "generated_at": NOW,
        "token_count": 40,
        "workspace_count": 2,
        "totals": {Finding.NON_EXPIRING: 10, Finding.STALE: 3, Finding.EXPIRED: 0, Finding.UNSCOPED: 1},
        "previous": WeekTotals(tokens=38, findings={"non_expiring": 7, "stale": 5, "expired": 2}),
        "by_workspace": {"prod": {Finding.STALE: 3}, "dev": {}},
        "worst_owners": [
            OwnerTally(
                "bob@example.com",
                "Bob",
                PrincipalType.USER,
                4,
                180,
                {Finding.NON_EXPIRING: 3, Finding.STALE: 1},
            ),
            OwnerTally("b5a2-…", "etl", PrincipalType.SERVICE_PRINCIPAL, 2, 100, {Finding.NON_EXPIRING: 2}),
        ],
        "failed_workspaces": [("staging", "permission denied <script>")],
        "not_in_slack": ["gone@example.com", "<x>@example.com"],
        "service_principal_tokens": 2,
        "reminders": ReminderResult(week=WEEK, dry_run=False, sent=["a", "b"], skipped_already_sent=["c"]),
        "attachments_note": "The full report (CSV) and a chart are in the thread.",
    }
    values.update(overrides)
    return WeeklySummary(**values)


def test_summary_shows_totals_with_the_change_since_last_week() -> None:
    message = summary_message(summary_of())
    body = "\n".join(texts(message.blocks))
    assert "Tokens: *40* (+2)" in body
    assert "never expires: *10* (+3)" in body
    assert "stale: *3* (-2)" in body
    assert "expired: *0* (-2)" in body, "a finding that disappeared still shows its drop"
    assert "full access: *1* (+1)" in body
    assert "*prod*: stale 3" in body and "*dev*: clean" in body
    assert "*Bob* · bob@example.com: 4 token(s) · never expires 3, stale 1" in body
    assert "(service principal)" in body
    assert "staging" in body and "&lt;script&gt;" in body and "<script>" not in body
    assert "Owners not found in Slack (2)" in body and "&lt;x&gt;@example.com" in body
    assert "2 reminder DM(s) sent · 1 already sent this week" in body
    assert "CSV" in body and message.text.startswith(f"Weekly token report {WEEK}")
    assert_within_limits(message.blocks)


def test_summary_without_last_week_says_so() -> None:
    body = "\n".join(texts(summary_message(summary_of(previous=None)).blocks))
    assert "no figures from last week" in body and "(+" not in body


def test_a_huge_summary_stays_within_block_kit_limits() -> None:
    huge = summary_of(
        by_workspace={f"workspace-{n:04d}-" + "x" * 60: {Finding.STALE: n} for n in range(400)},
        failed_workspaces=[(f"ws-{n}", "e" * 300) for n in range(40)],
        not_in_slack=[f"person{n:05d}@example.com" for n in range(3000)],
    )
    message = summary_message(huge)
    assert_within_limits(message.blocks)
    body = "\n".join(texts(message.blocks))
    assert "more workspace(s)" in body and "…and 2960 more" in body
    assert len(json.dumps(message.blocks)) < 50_000


def test_delta_text() -> None:
    assert [delta_text(5, 2), delta_text(2, 5), delta_text(3, 3), delta_text(3, None)] == [
        "+3",
        "-3",
        "±0",
        "",
    ]


def test_every_list_of_findings_uses_the_totals_order() -> None:
    """Whatever order the counts were gathered in, each line lists them as the totals do: worst first."""
    message = summary_message(
        summary_of(
            by_workspace={"prod": {Finding.STALE: 1, Finding.ORPHANED: 2}, "dev": {Finding.EXPIRED: 1}},
            worst_owners=[
                OwnerTally(
                    "bob@example.com",
                    "Bob",
                    PrincipalType.USER,
                    4,
                    180,
                    {Finding.STALE: 1, Finding.UNROTATED: 2, Finding.NON_EXPIRING: 3},
                )
            ],
            totals={Finding.EXPIRED: 1, Finding.STALE: 3, Finding.NON_EXPIRING: 10},
            previous=None,
        )
    )
    body = "\n".join(texts(message.blocks))
    assert "*prod*: orphaned 2, stale 1" in body
    assert "never expires 3, stale 1, not rotated 2" in body
    assert body.index("never expires: *10*") < body.index("stale: *3*") < body.index("expired: *1*")


def test_the_reminder_says_what_is_true_about_auto_revocation() -> None:
    due = flagged(1)
    item = due.assessment
    overdue = FlaggedToken(
        TokenAssessment(item.token, item.principal_type, item.findings, 0, item.owner_display), due.workspace
    )
    body = "\n".join(texts(reminder_message(OwnerReminder("a@x", "A", (overdue,), WEEK)).blocks))
    assert "auto-revoked in 0" not in body and "past Databricks' 90-day inactivity limit" in body
