"""Scope-change requests as Block Kit: before → after in plain words, the owner's confirmation, outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.approvals import ApprovalRequest, RequestKind, RequestState, ScopePlan
from bot.approvals.in_doubt import in_doubt_report
from bot.approvals.plans import decode_plan, encode_plan
from handlers.approval_blocks import (
    ACTION_CONFIRM,
    admin_request_blocks,
    decision_dm_text,
    outcome_text,
    self_confirm_blocks,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NARROW = ScopePlan("prod", "Alice", "dbt <!here>", (), ("sql", "unity-catalog:read"), widening=False)
WIDEN = ScopePlan("prod", "Bob", "", ("sql",), ("sql", "jobs"), widening=True)


def request(plan: ScopePlan, **kwargs: object) -> ApprovalRequest:
    values: dict[str, object] = {
        "id": "Req0000001",
        "kind": RequestKind.SCOPE,
        "subject": "0123456789abcdef",
        "workspace": "https://prod.example.com",
        "requester": "UBOB",
        "reason": "",
        "plan": plan,
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
        "owner": "alice@example.com",
    }
    values.update(kwargs)
    return ApprovalRequest(**values)  # type: ignore[arg-type]


def test_a_scope_plan_survives_the_store_encoding() -> None:
    assert decode_plan(RequestKind.SCOPE, encode_plan(WIDEN)) == WIDEN


def test_the_admin_message_shows_before_and_after_and_flags_a_widening() -> None:
    narrow = json.dumps(admin_request_blocks(request(NARROW)), ensure_ascii=False)
    assert "change the API scopes of" in narrow
    assert "full access → sql, unity-catalog (read)" in narrow and "Wider" not in narrow
    blocks = admin_request_blocks(request(NARROW))
    mrkdwn = [b["text"]["text"] for b in blocks if b.get("text", {}).get("type") == "mrkdwn"]
    plain = [b["text"]["text"] for b in blocks if b.get("text", {}).get("type") == "plain_text"]
    assert not any("<!here>" in t for t in mrkdwn) and any("“dbt <!here>”" in t for t in plain)
    wide = json.dumps(admin_request_blocks(request(WIDEN)), ensure_ascii=False)
    assert "sql → sql, jobs" in wide and "*Wider* than before" in wide


def test_the_owners_confirmation_asks_to_narrow_not_to_revoke() -> None:
    blocks = self_confirm_blocks(request(NARROW, requester="UALICE", self_service=True))
    text = json.dumps(blocks, ensure_ascii=False)
    assert "Narrow its API scopes now?" in text and "Revoke" not in text
    buttons = blocks[-1]["elements"]
    assert buttons[0]["text"]["text"] == "Narrow now" and buttons[0]["action_id"] == ACTION_CONFIRM


def test_outcomes_say_before_and_after() -> None:
    done = request(
        NARROW,
        state=RequestState.APPROVED,
        decided_by="UGRACE",
        decided_at=NOW,
        outcome="narrowed",
        outcome_detail="scopes of token 0123456789ab in prod narrowed: full access → sql, unity-catalog:read",
    )
    assert (
        "Narrowed the API scopes of token `0123456789ab` in *prod*: full access → sql, unity-catalog (read)"
        in (outcome_text(done))
    )
    assert "Narrowed: full access → sql, unity-catalog (read)" in outcome_text(done, standalone=False)
    assert "change the API scopes of token `0123456789ab`" in decision_dm_text(done, to_owner=False)
    failed = request(
        WIDEN,
        state=RequestState.APPROVED,
        decided_by="UGRACE",
        decided_at=NOW,
        outcome="failed",
        outcome_detail="the scopes of token 0123456789ab were NOT changed: boom",
    )
    assert "Failed: the scopes of token 0123456789ab were NOT changed" in outcome_text(failed)


def test_a_scope_change_in_doubt_says_what_to_check() -> None:
    report = in_doubt_report(
        request(NARROW, state=RequestState.APPROVED, decided_by="UGRACE", decided_at=NOW)
    )
    assert (
        "whether the scopes of token 0123456789ab in prod were changed to sql,unity-catalog:read"
        in report.not_known
    )
