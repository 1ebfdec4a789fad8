"""Who may decide what (four eyes), table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.approvals import ApprovalRequest, RequestKind, RequestState, RevokePlan
from bot.governance.decisions import may_decide

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def request(requester: str = "UREQ", self_service: bool = False) -> ApprovalRequest:
    return ApprovalRequest(
        id="abcdefghij",
        kind=RequestKind.REVOKE,
        subject="t" * 32,
        workspace="https://ws",
        requester=requester,
        reason="",
        plan=RevokePlan(),
        self_service=self_service,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        state=RequestState.PENDING,
    )


A, D, C = RequestState.APPROVED, RequestState.DENIED, RequestState.CANCELLED


@pytest.mark.parametrize(
    ("description", "req", "actor", "decision", "approver", "allowed", "reason"),
    [
        ("approver approves another's request", request(), "UAPP", A, True, True, ""),
        ("approver denies another's request", request(), "UAPP", D, True, True, ""),
        ("non-approver cannot approve", request(), "UX", A, False, False, "Only approvers"),
        ("non-approver cannot deny", request(), "UX", D, False, False, "Only approvers"),
        ("approver cannot approve own request", request("UAPP"), "UAPP", A, True, False, "four eyes"),
        ("approver cannot deny own request either", request("UAPP"), "UAPP", D, True, False, "four eyes"),
        ("requester may cancel", request(), "UREQ", C, False, True, ""),
        ("someone else may not cancel", request(), "UAPP", C, True, False, "Only the requester"),
        ("owner confirms self-service", request(self_service=True), "UREQ", A, False, True, ""),
        ("owner cancels self-service", request(self_service=True), "UREQ", C, False, True, ""),
        (
            "approver cannot confirm an owner's self-service",
            request(self_service=True),
            "UAPP",
            A,
            True,
            False,
            "Only the token's owner",
        ),
        (
            "self-service cannot be denied",
            request(self_service=True),
            "UREQ",
            D,
            False,
            False,
            "confirmed or cancelled",
        ),
    ],
)
def test_may_decide(
    description: str,
    req: ApprovalRequest,
    actor: str,
    decision: RequestState,
    approver: bool,
    allowed: bool,
    reason: str,
) -> None:
    verdict = may_decide(req, actor, decision, actor_is_approver=approver)
    assert verdict.allowed is allowed, description
    assert reason in verdict.reason, description
