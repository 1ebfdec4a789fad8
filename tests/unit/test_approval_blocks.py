"""What requesters, approvers and owners read about a request: pure rendering of approval_blocks."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.approvals import ApprovalRequest, RequestKind, RequestState, RevokePlan, TokenPlan
from handlers.approval_blocks import (
    admin_decided_blocks,
    admin_request_blocks,
    decision_dm_blocks,
    decision_dm_text,
    describe,
    outcome_text,
    requested_blocks,
    self_confirm_blocks,
    self_confirm_modal,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TOKEN = "36c04374415e" + "0" * 20
ALICE, BOB, GRACE = "U01ALICE00", "U02BOB0000", "U03GRACE00"


def revoke(
    *,
    requester: str = BOB,
    self_service: bool = False,
    reason: str = "left the team",
    state: RequestState = RequestState.PENDING,
    decided_by: str | None = None,
    outcome: str | None = None,
    detail: str | None = None,
) -> ApprovalRequest:
    plan = RevokePlan("prod", "Alice Anders", "ci job")
    return ApprovalRequest(
        id="req123",
        kind=RequestKind.REVOKE,
        subject=TOKEN,
        workspace="https://prod.example",
        requester=requester,
        reason=reason,
        plan=plan,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
        state=state,
        decided_by=decided_by,
        decided_at=NOW + timedelta(minutes=5) if decided_by else None,
        outcome=outcome,
        outcome_detail=detail,
        owner="alice@example.com",
        self_service=self_service,
    )


def revoked(**kwargs: Any) -> ApprovalRequest:
    return revoke(
        state=RequestState.APPROVED,
        outcome="revoked",
        detail=f"token {TOKEN[:12]} revoked in prod",
        **kwargs,
    )


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn string in the blocks (where Slack would apply formatting)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(str(node.get("text", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def plain_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every line of plain_text in the blocks (shown exactly as written)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "plain_text":
                found.extend(str(node.get("text", "")).split("\n"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


# --------------------------------------------------------------------------- item 4: self-revoke wording


def test_the_owners_own_revoke_is_not_approved_by_themselves() -> None:
    text = outcome_text(revoked(requester=ALICE, self_service=True, decided_by=ALICE))
    assert "Approved by" not in text
    assert f"Revoked token `{TOKEN[:12]}` in *prod*" in text
    assert len(re.findall("revoked", text, re.IGNORECASE)) == 1, text


def test_an_approved_revoke_says_who_approved_and_what_happened_once() -> None:
    text = outcome_text(revoked(decided_by=GRACE))
    assert text.startswith(":white_check_mark: Approved by <@U03GRACE00>")
    assert len(re.findall("revoked", text, re.IGNORECASE)) == 1, text
    assert "Revoked:" not in text


def test_the_decided_admin_message_does_not_repeat_itself() -> None:
    blocks = admin_decided_blocks(revoked(decided_by=GRACE))
    outcome = blocks[-2]["text"]["text"] if blocks[-1]["type"] == "context" else blocks[-1]["text"]["text"]
    assert "Approved by <@U03GRACE00>" in outcome
    assert len(re.findall("revoked", outcome, re.IGNORECASE)) == 1, outcome
    assert "actions" not in [b["type"] for b in blocks]


def test_a_failed_revoke_says_it_failed_without_repeating_the_outcome_word() -> None:
    request = revoke(
        state=RequestState.APPROVED,
        decided_by=GRACE,
        outcome="failed",
        detail=f"token {TOKEN[:12]} was already gone from prod",
    )
    text = outcome_text(request)
    assert text.startswith(":x: Approved by <@U03GRACE00>")
    assert "Failed: token 36c04374415e was already gone from prod" in text


def test_the_owners_cancel_and_patbots_cancel_read_right() -> None:
    own = outcome_text(
        revoke(requester=ALICE, self_service=True, state=RequestState.CANCELLED, decided_by=ALICE)
    )
    assert "Cancelled" in own and "<@" not in own and "Nothing was changed" in own
    by_bot = outcome_text(revoke(state=RequestState.CANCELLED, decided_by="patbot"))
    assert "<@patbot>" not in by_bot and "Cancelled by patbot" in by_bot


def test_in_progress_self_service_does_not_claim_an_approval() -> None:
    text = outcome_text(
        revoke(requester=ALICE, self_service=True, state=RequestState.APPROVED, decided_by=ALICE)
    )
    assert "Approved" not in text and "in progress" in text.lower()


# --------------------------------------------------------------------------- item 10: the owner's DM


def test_the_owner_is_told_who_asked_why_and_who_approved() -> None:
    text = decision_dm_text(revoked(decided_by=GRACE), to_owner=True)
    assert f"`{TOKEN[:12]}`" in text and "*prod*" in text
    assert "<@U02BOB0000>" in text and "left the team" in text and "<@U03GRACE00>" in text
    assert len(re.findall("revoked", text, re.IGNORECASE)) == 1, text


def test_the_requester_is_told_what_their_request_was_and_its_outcome() -> None:
    text = decision_dm_text(revoked(decided_by=GRACE), to_owner=False)
    assert "`req123`" in text and f"`{TOKEN[:12]}`" in text and "Approved by <@U03GRACE00>" in text
    denied = decision_dm_text(revoke(state=RequestState.DENIED, decided_by=GRACE), to_owner=False)
    assert "Denied by <@U03GRACE00>" in denied and "Nothing was changed" in denied


def test_dm_blocks_carry_the_reason_literally() -> None:
    request = revoked(decided_by=GRACE, reason="*urgent* &amp; <@U999>")
    blocks = decision_dm_blocks(request, to_owner=True)
    assert "Reason: *urgent* &amp; <@U999>" in plain_texts(blocks)
    assert not any("urgent" in t for t in mrkdwn_texts(blocks))


# --------------------------------------------------------------------------- item 11: reasons as typed


HOSTILE = "*urgent* &amp; <!channel> _now_ `x`"


def test_reasons_are_shown_as_typed_in_every_request_view() -> None:
    request = revoke(reason=HOSTILE)
    views: list[list[dict[str, Any]]] = [
        admin_request_blocks(request),
        admin_decided_blocks(replace(request, state=RequestState.DENIED, decided_by=GRACE, decided_at=NOW)),
        requested_blocks(request),
        self_confirm_blocks(request),
        self_confirm_modal(request)["blocks"],
    ]
    for blocks in views:
        assert f"Reason: {HOSTILE}" in plain_texts(blocks), json.dumps(blocks)
        assert not any("urgent" in t for t in mrkdwn_texts(blocks)), "user text is never mrkdwn"
        assert '"emoji": false' in json.dumps(blocks), "`:x:` in a reason stays as typed too"


def test_token_comments_are_shown_as_typed_too() -> None:
    request = replace(revoke(), plan=RevokePlan("prod", "Alice Anders", "*prod* deploy <!here>"))
    blocks = admin_request_blocks(request)
    assert any("Comment: “*prod* deploy <!here>”" in t for t in plain_texts(blocks))
    assert not any("deploy" in t for t in mrkdwn_texts(blocks))


def test_long_reasons_end_on_a_word_with_an_ellipsis() -> None:
    reason = ("word " * 200).strip()  # 999 characters
    [text] = [t for t in plain_texts(admin_request_blocks(revoke(reason=reason))) if t.startswith("Reason:")]
    shown = text.removeprefix("Reason: ")
    assert shown.endswith("word…"), shown[-20:]
    assert len(shown) <= 501
    assert reason.startswith(shown.removesuffix("…"))


def test_short_reasons_are_not_touched() -> None:
    [text] = [
        t for t in plain_texts(admin_request_blocks(revoke(reason="a" * 500))) if t.startswith("Reason:")
    ]
    assert text == "Reason: " + "a" * 500


def test_a_create_says_which_key_it_writes_and_whether_a_live_token_holds_it() -> None:
    plan = TokenPlan("prod", "app-1", "etl", 86_400, "1 day", "", "patbot", "etl-token")
    free = replace(revoke(), kind=RequestKind.CREATE, plan=plan)
    assert "`patbot/etl-token`" in describe(free) and "holds no live token's value" in describe(free)
    taken = replace(free, plan=replace(plan, secret_key="etl-token-2", secret_key_note="etl-token holds X"))
    assert "`patbot/etl-token-2`" in describe(taken) and "chosen because etl-token holds X" in describe(taken)
