"""Requests in doubt: what each kind says was and was not done, and the start-up announcement."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis

from bot.approvals import ApprovalRequest, ApprovalStore, RequestDraft, RequestKind, RequestState
from bot.approvals.in_doubt import InDoubt, announce_in_doubt, in_doubt_report
from bot.approvals.plans import empty_plan
from handlers.in_doubt_blocks import in_doubt_blocks
from handlers.weekly_blocks import summary_message
from tests.unit.test_weekly_blocks import summary_of as weekly_summary

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def store() -> ApprovalStore:
    return ApprovalStore(
        fakeredis.FakeRedis(decode_responses=True), ttl=timedelta(hours=1), clock=lambda: NOW
    )


def approved(s: ApprovalStore, kind: RequestKind, subject: str, **fields: Any) -> ApprovalRequest:
    plan = replace(empty_plan(kind), **fields)
    request = s.create(RequestDraft(kind, subject, "https://ws.example.com", "UREQ1", plan=plan))
    s.attach_message(request.id, "CADMIN0001", f"1.{subject[:4]}")
    return s.decide(request.id, RequestState.APPROVED, "UAPP1").request


def test_each_kind_says_what_is_not_known() -> None:
    s = store()
    revoke = in_doubt_report(approved(s, RequestKind.REVOKE, "a" * 32, workspace_label="prod"))
    assert revoke.done.startswith("Approved by UAPP1 2026-11-23 09:30 UTC")
    assert revoke.not_known.startswith(f"whether token {'a' * 12} in prod was revoked")
    create = in_doubt_report(
        approved(s, RequestKind.CREATE, "sp-1", principal="etl", secret_scope="pat", secret_key="etl")
    )
    assert "a token for etl was created" in create.not_known and "secret pat/etl" in create.not_known
    rotate = in_doubt_report(approved(s, RequestKind.ROTATE, "b" * 32, principal="etl"))
    assert "whether the old token was revoked" in rotate.not_known
    policy = in_doubt_report(approved(s, RequestKind.POLICY, "policy", days=30, labels="prod, dev"))
    assert "maxTokenLifetimeDays = 30 was applied on prod, dev" in policy.not_known


def test_announce_shows_each_in_doubt_request_and_never_retries_it() -> None:
    s = store()
    first = approved(s, RequestKind.REVOKE, "a" * 32)
    second = approved(s, RequestKind.REVOKE, "b" * 32)
    done = approved(s, RequestKind.REVOKE, "c" * 32)
    s.record_outcome(done.id, "revoked")
    shown: list[str] = []
    outcomes: list[str] = []

    def show(item: InDoubt) -> None:
        shown.append(item.request.id)
        if item.request.id == second.id:  # another replica records the outcome meanwhile
            s.record_outcome(second.id, "revoked", "token revoked")

    result = announce_in_doubt(s, show, lambda r: outcomes.append(f"{r.id}:{r.outcome}"))
    assert sorted(shown) == sorted([first.id, second.id])
    assert outcomes == [f"{second.id}:revoked"], "the true outcome gets the last word"
    assert [i.request.id for i in result] == [first.id]
    assert [r.id for r in s.in_doubt()] == [first.id] and s.get(first.id).outcome is None


def test_a_failing_update_does_not_stop_the_others() -> None:
    s = store()
    first = approved(s, RequestKind.REVOKE, "a" * 32)
    second = approved(s, RequestKind.REVOKE, "b" * 32)

    def show(item: InDoubt) -> None:
        if item.request.id == first.id:
            raise OSError("Slack unreachable")

    result = announce_in_doubt(s, show, lambda r: None)
    assert [i.request.id for i in result] == [second.id]


def test_admin_message_and_summary_show_requests_in_doubt() -> None:
    item = in_doubt_report(approved(store(), RequestKind.REVOKE, "a" * 32, workspace_label="prod"))
    text = str(in_doubt_blocks(item))
    assert (
        "In doubt" in text and "<@UAPP1>" in text and "will not retry" in text and "pat_approve" not in text
    )
    rendered = summary_message(weekly_summary(in_doubt=[item]))
    body = str(rendered.blocks)
    assert "Requests in doubt (1)" in body and item.request.id in body
    assert "in doubt" not in str(summary_message(weekly_summary()).blocks).lower()
