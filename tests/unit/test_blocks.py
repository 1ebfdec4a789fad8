"""Pure Block Kit rendering: limits, escaping, dates, buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.governance.findings import Classifier
from bot.governance.models import FleetReport, Policy, Token, Workspace, WorkspaceReport
from handlers.blocks import (
    ACTION_REVOKE_OWN,
    MAX_BLOCKS,
    MAX_SECTION_CHARS,
    escape,
    fleet_audit_blocks,
    help_blocks,
    home_view,
    own_audit_blocks,
    slack_date,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def report_with(n: int, comment: str = "ci job", failed: bool = False) -> FleetReport:
    ws = Workspace(host="https://prod.example", name="prod")
    classifier = Classifier(Policy(), NOW)
    tokens = [
        classifier.classify(
            Token(
                f"{i:032x}", ws.host, "alice@example.com", 1, comment, NOW - timedelta(days=i), None, None, ()
            )
        )
        for i in range(n)
    ]
    reports = [WorkspaceReport(workspace=ws, tokens=tokens)]
    if failed:
        reports.append(
            WorkspaceReport(workspace=Workspace("https://down.example", name="down"), error="timed out")
        )
    return FleetReport(generated_at=NOW, workspaces=reports)


def all_text(blocks: object) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_escape_neutralises_mentions_and_links() -> None:
    assert escape("<!channel> <@U123> <https://evil|click> a&b") == (
        "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil|click&gt; a&amp;b"
    )


def test_hostile_comment_cannot_ping_the_channel() -> None:
    blocks = own_audit_blocks(report_with(1, comment="<!channel> rotate me <@U999>"), "alice@example.com")
    text = all_text(blocks)
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "&lt;!channel&gt;" in text


def test_dates_use_the_slack_date_format() -> None:
    stamp = slack_date(NOW)
    assert stamp == f"<!date^{int(NOW.timestamp())}^{{date_short}}|2026-11-25 12:00 UTC>"
    assert slack_date(None) == "never"


def test_long_lists_respect_block_kit_limits() -> None:
    blocks = own_audit_blocks(report_with(500, comment="x" * 5000), "alice@example.com")
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
    assert "…and 480 more" in all_text(blocks)
    fleet = fleet_audit_blocks(report_with(500), "all workspaces", csv_sent=True)
    assert len(fleet) <= MAX_BLOCKS


def test_fleet_view_names_failed_workspaces_and_totals() -> None:
    text = all_text(fleet_audit_blocks(report_with(3, failed=True), "all workspaces", csv_sent=True))
    assert "down" in text and "timed out" in text
    assert "never expires: *3*" in text
    assert "CSV" in text


def test_home_view_has_a_revoke_button_per_token_carrying_only_the_id() -> None:
    view = home_view(report_with(3), "alice@example.com")
    buttons = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    assert len(buttons) == 3
    assert {b["action_id"] for b in buttons} == {ACTION_REVOKE_OWN}
    assert buttons[0]["value"] == f"{0:032x}"
    assert view["type"] == "home" and len(view["blocks"]) <= 100


def test_help_shows_approver_commands_only_to_approvers() -> None:
    assert "/pat audit all" not in all_text(help_blocks(False))
    assert "/pat audit all" in all_text(help_blocks(True))


def test_token_ids_are_shown_as_twelve_characters() -> None:
    text = all_text(own_audit_blocks(report_with(1), "alice@example.com"))
    assert f"`{0:012x}`" in text and f"{0:032x}" not in text
