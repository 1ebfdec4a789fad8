"""What approvers and requesters read about a migration, and how its plan is stored: pure."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.approvals import ApprovalRequest, MigratePlan, RequestKind, RequestState
from bot.approvals.in_doubt import in_doubt_report
from bot.approvals.plans import decode_plan, encode_plan
from handlers.approval_blocks import admin_decided_blocks, admin_request_blocks, decision_dm_blocks
from handlers.blocks import ACTION_REVOKE_MIGRATED

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
PLAN = MigratePlan(
    workspace_label="prod",
    principal_id="5133000000000001",
    application_id="app-1",
    principal="etl <pipeline>",
    lifetime_seconds=90 * 86_400,
    lifetime="90 days",
    scopes=("sql", "jobs:read"),
    secret_scope="patbot",
    client_id_key="etl-pipeline-oauth-client-id",
    secret_key="etl-pipeline-oauth-secret",
    pat_ids=("a" * 32, "b" * 32),
    pat_comments=("nightly <!here>", ""),
    pat_last_used=("2026-11-24", ""),
)


def request(plan: MigratePlan = PLAN, **changes: object) -> ApprovalRequest:
    base = ApprovalRequest(
        id="req123",
        kind=RequestKind.MIGRATE,
        subject="app-1@https://prod",
        workspace="https://prod",
        requester="U02BOB0000",
        reason="",
        plan=plan,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def buttons(blocks: list[dict]) -> list[str]:
    return [
        b["accessory"]["value"]
        for b in blocks
        if b.get("accessory", {}).get("action_id") == ACTION_REVOKE_MIGRATED
    ]


def test_the_plan_survives_the_store() -> None:
    assert decode_plan(RequestKind.MIGRATE, encode_plan(PLAN)) == PLAN
    assert [p.last_used for p in PLAN.pats] == ["2026-11-24", ""]


def test_the_request_shows_scopes_keys_and_pats_escaped() -> None:
    text = json.dumps(admin_request_blocks(request()))
    assert "sql, jobs (read)" in text and "patbot/etl-pipeline-oauth-secret" in text
    assert "etl &lt;pipeline&gt;" in text and "&lt;!here&gt;" in text and "<!here>" not in text
    assert "last used 2026-11-24" in text and "never used" in text
    assert "Full access" not in text and buttons(admin_request_blocks(request())) == []


def test_full_access_is_spelled_out_for_the_approver() -> None:
    wide = replace(PLAN, scopes=("all-apis",), full_access_from=("bbbbbbbbbbbb",))
    text = json.dumps(admin_request_blocks(request(wide)))
    assert "Full access (all-apis)" in text and "`bbbbbbbbbbbb`" in text


def test_a_migrated_outcome_lists_next_steps_and_a_revoke_button_per_pat() -> None:
    done = request(
        state=RequestState.APPROVED,
        decided_by="U03GRACE00",
        decided_at=NOW,
        outcome="migrated",
        outcome_detail="OAuth secret 0123 created",
    )
    for blocks in (admin_decided_blocks(done), decision_dm_blocks(done, to_owner=False)):
        assert buttons(blocks) == list(PLAN.pat_ids)
        assert "DATABRICKS_CLIENT_SECRET" in json.dumps(blocks) and "Nothing was revoked" in json.dumps(
            blocks
        )
    failed = replace(done, outcome="failed", outcome_detail="nothing created")
    assert buttons(admin_decided_blocks(failed)) == []


def test_in_doubt_says_what_to_check() -> None:
    doubt = in_doubt_report(request(state=RequestState.APPROVED, decided_by="U03GRACE00", decided_at=NOW))
    assert (
        "OAuth secret for etl <pipeline>" in doubt.not_known
        and "patbot/etl-pipeline-oauth-secret" in doubt.not_known
    )
