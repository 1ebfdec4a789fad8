"""Least privilege in the weekly job: "Narrow to …" buttons in the owner's DM, the summary's scope share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.governance.findings import Classifier
from bot.governance.models import Finding, FleetReport, Policy, Token, Workspace, WorkspaceReport
from bot.weekly import WeekTotals, build_summary, dm_lines, plan_reminders
from handlers.blocks import ACTION_NARROW_OWN, ACTION_REVOKE_OWN, MAX_BLOCKS
from handlers.weekly_blocks import reminder_message, summary_message

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WEEK = "2025-W10"
HOST = "https://prod.example.com"


def token(n: int, owner: str = "alice@example.com", **kwargs: Any) -> Token:
    values: dict[str, Any] = {
        "token_id": f"{n:04d}" + "cd" * 14,
        "workspace": HOST,
        "owner": owner,
        "owner_id": None,
        "comment": f"token {n}",
        "created": NOW - timedelta(days=5),
        "expires": NOW + timedelta(days=20),
        "last_used": NOW.date(),
        "scopes": ("sql",),
    }
    values.update(kwargs)
    return Token(**values)


STALE = {"last_used": (NOW - timedelta(days=45)).date()}
WIDE = {"scopes": (), "autoscope_state": "AUTOSCOPE_STATE_COMPLETED", "inferred_scopes": ("sql", "jobs:read")}


def report(*tokens: Token) -> FleetReport:
    classifier = Classifier(Policy(), NOW)
    items = [classifier.classify(t) for t in tokens]
    return FleetReport(NOW, [WorkspaceReport(Workspace(HOST, name="prod"), tokens=items)])


def texts(blocks: list[dict[str, Any]]) -> str:
    out = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
        out += [e["text"] for e in block.get("elements", []) if "text" in e]
    return "\n".join(out)


def test_the_owner_reminder_carries_the_owners_narrowable_tokens() -> None:
    fleet = report(
        token(1, **STALE),  # earns the DM
        token(2, **WIDE),  # overscoped, not stale: not listed, but narrowable
        token(3, **STALE, **WIDE),  # both
        token(4, owner="bob@example.com", **WIDE),  # bob holds nothing stale: no DM at all
        token(5, scopes=("sql",), inferred_scopes=("jobs",), autoscope_state="AUTOSCOPE_STATE_COMPLETED"),
    )
    reminders, _ = plan_reminders(fleet, WEEK)
    assert [r.email for r in reminders] == ["alice@example.com"]
    (alice,) = reminders
    assert {t.assessment.token.token_id[:4] for t in alice.tokens} == {"0001", "0003"}
    # token 5 is overscoped, but uses nothing it has: there is nothing to narrow it to
    assert [t.assessment.token.token_id[:4] for t in alice.narrowable] == ["0003", "0002"]
    assert all(Finding.OVERSCOPED in t.assessment.findings for t in alice.narrowable)


def test_each_narrowable_token_gets_a_narrow_button_carrying_only_its_id() -> None:
    reminders, _ = plan_reminders(report(token(1, **STALE), token(2, **WIDE)), WEEK)
    message = reminder_message(reminders[0])
    buttons = [b["accessory"] for b in message.blocks if "accessory" in b]
    assert [b["action_id"] for b in buttons] == [ACTION_REVOKE_OWN, ACTION_NARROW_OWN]
    narrow = buttons[1]
    assert narrow["value"] == token(2).token_id
    assert narrow["text"]["text"] == "Narrow to jobs (read), sql"
    assert set(narrow) == {"type", "action_id", "text", "value"}
    body = texts(message.blocks)
    assert "full access → jobs (read), sql" in body
    assert "you confirm first" in body


def test_a_reminder_without_narrowable_tokens_has_no_narrow_section() -> None:
    reminders, _ = plan_reminders(report(token(1, **STALE)), WEEK)
    message = reminder_message(reminders[0])
    assert ACTION_NARROW_OWN not in str(message.blocks)
    assert "narrow" not in texts(message.blocks).lower()


def test_many_narrowable_tokens_stay_within_block_kit_limits() -> None:
    tokens = [token(n, **STALE, **WIDE) for n in range(60)]
    reminders, _ = plan_reminders(report(*tokens), WEEK)
    message = reminder_message(reminders[0])
    assert len(message.blocks) <= MAX_BLOCKS
    assert "more can be narrowed" in texts(message.blocks)


def test_the_summary_shows_the_share_of_tokens_with_scopes_and_its_change() -> None:
    fleet = report(token(1), token(2), token(3, scopes=()), token(4, scopes=("all-apis",)))
    previous = WeekTotals(tokens=5, findings={"unscoped": 4})
    content = build_summary(fleet, WEEK, previous=previous, not_in_slack=[], service_principal_tokens=0)
    share = content.scope_share
    assert share is not None
    assert (share.scoped, share.tokens, share.percent, share.previous_percent) == (2, 4, 50, 20)
    body = texts(summary_message(content).blocks)
    assert "With API scopes: *2* of 4 tokens (50%, +30 points since last week)" in body


def test_the_scope_share_without_last_weeks_figure_shows_no_change() -> None:
    fleet = report(token(1), token(2, scopes=()))
    # last week was recorded before scopes were counted: no `unscoped` figure to compare with
    previous = WeekTotals(tokens=5, findings={"stale": 1})
    content = build_summary(fleet, WEEK, previous=previous, not_in_slack=[], service_principal_tokens=0)
    body = texts(summary_message(content).blocks)
    assert "With API scopes: *1* of 2 tokens (50%)" in body


def test_a_dry_run_lists_what_each_dm_would_offer_to_narrow() -> None:
    reminders, _ = plan_reminders(report(token(1, **STALE), token(2, **WIDE)), WEEK)
    assert "  0002cdcdcdcd in prod can be narrowed to jobs:read,sql" in dm_lines(reminders[0])
