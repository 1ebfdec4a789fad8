"""Pure Block Kit rendering: limits, escaping, dates, buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.governance.findings import Classifier
from bot.governance.models import Finding, FleetReport, Policy, Posture, Token, Workspace, WorkspaceReport
from bot.report import to_table
from handlers.blocks import (
    ACTION_REVOKE_OWN,
    FINDING_LABELS,
    MAX_BLOCKS,
    MAX_SECTION_CHARS,
    escape,
    fleet_audit_blocks,
    help_blocks,
    home_view,
    own_audit_blocks,
    policy_lines,
    slack_date,
    token_line,
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


# --------------------------------------------------------------------------- what is true about auto-revocation


def line_for(token: Token) -> str:
    item = Classifier(Policy(), NOW).classify(token)
    return token_line(item, "prod")


def token(days_idle: int | None, *, created_days: int = 200, expires_in: int | None = None) -> Token:
    return Token(
        "ab" * 16,
        "https://prod.example",
        "alice@example.com",
        1,
        "",
        NOW - timedelta(days=created_days),
        None if expires_in is None else NOW + timedelta(days=expires_in),
        None if days_idle is None else (NOW - timedelta(days=days_idle)).date(),
        ("sql",),
    )


def test_a_token_idle_past_the_inactivity_limit_is_due_not_revoked_today() -> None:
    line = line_for(token(120))
    assert "auto-revoked in 0" not in line
    assert "past Databricks' 90-day inactivity limit" in line


def test_an_expired_token_is_not_counting_down_to_auto_revocation() -> None:
    line = line_for(token(12, expires_in=-3))
    assert "auto-revoked" not in line
    assert "no longer usable" in line


def test_an_active_token_counts_down_in_days() -> None:
    line = line_for(token(12, expires_in=60))
    assert "auto-revoked in 78 days unless used" in line
    assert "auto-revoked in 1 day unless used" in line_for(token(89, expires_in=60))


# --------------------------------------------------------------------------- one order of findings everywhere


def two_workspace_report() -> FleetReport:
    """Two workspaces whose tokens carry the same findings, found in opposite orders."""
    classifier = Classifier(Policy(), NOW)
    a = Workspace("https://a.example", name="a")
    b = Workspace("https://b.example", name="b")
    stale_only = token(40, created_days=40, expires_in=30)
    non_expiring_fresh = Token(
        "cd" * 16, a.host, "bob@example.com", 2, "", NOW - timedelta(days=1), None, NOW.date(), ("sql",)
    )
    ws_a = WorkspaceReport(
        workspace=a,
        tokens=[
            classifier.classify(Token(**{**_fields(stale_only), "workspace": a.host})),
            classifier.classify(non_expiring_fresh),
        ],
    )
    ws_b = WorkspaceReport(
        workspace=b,
        tokens=[
            classifier.classify(Token(**{**_fields(non_expiring_fresh), "workspace": b.host})),
            classifier.classify(Token(**{**_fields(stale_only), "workspace": b.host})),
        ],
    )
    return FleetReport(generated_at=NOW, workspaces=[ws_a, ws_b])


def _fields(t: Token) -> dict[str, object]:
    return {name: getattr(t, name) for name in Token.__slots__}


def test_every_line_lists_findings_in_the_summarys_order() -> None:
    blocks = fleet_audit_blocks(two_workspace_report(), "all workspaces", csv_sent=True)
    by_ws = next(b["text"]["text"] for b in blocks if "*By workspace*" in b.get("text", {}).get("text", ""))
    lines = by_ws.splitlines()[1:]
    assert lines[0] == "• *a*: never expires 1, stale 1"
    assert lines[1] == "• *b*: never expires 1, stale 1"
    totals = blocks[1]["text"]["text"]
    assert totals.index("never expires") < totals.index("stale")


def test_a_tokens_findings_are_listed_worst_first() -> None:
    # The classifier finds non_expiring, then stale, unrotated, orphaned; orphaned is the worst.
    item = Classifier(Policy(), NOW).classify(token(40, created_days=200), principals={})
    assert item.findings[0] is not Finding.ORPHANED
    line = token_line(item, "prod")
    assert "_orphaned, never expires, stale, not rotated_" in line


# --------------------------------------------------------------------------- plain words for the policy


def test_policy_lines_speak_plain_words() -> None:
    lines = policy_lines(
        {
            "prod": Posture(tokens_enabled=True, max_token_lifetime_days=90, max_lifetime_set=True),
            "staging": Posture(tokens_enabled=True, max_token_lifetime_days=730, max_lifetime_set=False),
            "analytics": Posture(tokens_enabled=False, max_token_lifetime_days=90, max_lifetime_set=True),
            "down": "timed out <after 30 s>",
        },
        max_days=90,
    )
    text = "\n".join(lines)
    assert "maxTokenLifetimeDays" not in text and "(unset)" not in text
    assert lines[0] == "• *prod*: personal access tokens allowed; new tokens live at most 90 days"
    assert lines[1].startswith("• *staging*: personal access tokens allowed; no maximum set")
    assert "730 days" in lines[1] and "above patbot's maximum of 90 days" in lines[1]
    assert lines[2] == "• *analytics*: personal access tokens turned off"
    assert lines[3] == "• *down*: could not read (timed out &lt;after 30 s&gt;)"


def test_finding_labels_are_plain_words_for_every_finding() -> None:
    assert set(FINDING_LABELS) == set(Finding)
    assert all("_" not in label for label in FINDING_LABELS.values())


def test_the_cli_table_says_due_and_expired_instead_of_zero_days() -> None:
    items = [Classifier(Policy(), NOW).classify(t) for t in (token(120), token(12, expires_in=-3), token(12))]
    ws = WorkspaceReport(Workspace("https://prod.example"), tokens=items)
    rows = [
        line.split() for line in to_table(FleetReport(NOW, [ws])).splitlines() if "alice@example.com" in line
    ]
    assert sorted(row[-1] for row in rows) == ["78", "due", "expired"]
