"""Every Databricks write goes out exactly once, whatever the gateway answers, and the outcome says what happened.

Real HTTP against the emulator, the real SDK `Config` for auth; faults are injected before Databricks acts and
after it acted (the answer lost on the way back).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.approvals import (
    ApprovalRequest,
    ApprovalStore,
    PolicyPlan,
    RequestDraft,
    RequestKind,
    RequestState,
    RevokePlan,
    TokenPlan,
    connect_redis,
)
from bot.fleet import Fleet
from bot.governance.models import PrincipalType, TokenAssessment
from bot.operations import Operations
from bot.provisioning import CreateAsk, Rules, plan_create, plan_rotation
from bot.sandbox.databricks_emulator import DatabricksEmulator, EmulatedToken
from bot.secret_keys import SecretKeys
from bot.write_once import RATE_LIMITED_ATTEMPTS
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens"
OBO = "/api/2.0/token-management/on-behalf-of/tokens"
CONF = "/api/2.0/workspace-conf"
PUT = "/api/2.0/secrets/put"
HTTP_TIMEOUT = 1  # seconds: `emulator_fleet(retry_seconds=1)` gives the clients a one-second HTTP timeout

# How the answer gets lost: a gateway error (with Retry-After 0, absent or 1), a hang past the client's timeout,
# or a connection reset.
LOST = {
    "503-retry-after-0": {"status": 503, "retry_after": 0},
    "503-no-retry-after": {"status": 503, "retry_after": None},
    "502-retry-after-1": {"status": 502, "retry_after": 1},
    "504-no-retry-after": {"status": 504, "retry_after": None},
    "timeout-retry-after-0": {"status": 503, "retry_after": 0, "hang": HTTP_TIMEOUT + 0.6},
    "timeout-no-retry-after": {"status": 504, "retry_after": None, "hang": HTTP_TIMEOUT + 0.6},
    "reset": {"status": None},
}
FAULTS = [pytest.param(kw, id=name) for name, kw in LOST.items()]
ACTED = [pytest.param(True, id="after-acting"), pytest.param(False, id="before-acting")]


@dataclass
class Harness:
    databricks: DatabricksEmulator
    fleet: Fleet
    store: ApprovalStore
    keys: SecretKeys
    ops: Operations

    def run(
        self, kind: RequestKind, subject: str, host: str, plan: TokenPlan | RevokePlan | PolicyPlan
    ) -> ApprovalRequest:
        request = self.store.create(RequestDraft(kind, subject, host, "U_REQ", "", plan))
        self.store.decide(request.id, RequestState.APPROVED, "U_APPROVER")
        return self.ops.execute(self.store.get(request.id))

    def host(self, name: str) -> str:
        return self.databricks.host_of(name)

    def create(
        self, principal: str = "ml-serving", workspace: str = "prod", comment: str = ""
    ) -> ApprovalRequest:
        plan = plan_create(
            self.fleet,
            CreateAsk(principal, "7d", workspace, comment),
            Rules(90, "patbot", self.keys),
        )
        subject = f"{plan.principal.name}@{plan.workspace.host}"
        return self.run(RequestKind.CREATE, subject, plan.workspace.host, plan.stored())

    def rotate(self, token_id: str, workspace: str = "prod") -> ApprovalRequest:
        token = self.fleet.gateway(self.fleet.by_host(self.host(workspace))).get_token(token_id)
        item = TokenAssessment(token, PrincipalType.SERVICE_PRINCIPAL, (), 90)
        plan = plan_rotation(self.fleet, item, Rules(90, "patbot", self.keys))
        return self.run(RequestKind.ROTATE, token_id, token.workspace, plan.stored())

    def calls(self, method: str, path: str) -> int:
        return self.databricks.call_counts().get((method, path), 0)

    def sp_tokens(self, name: str, workspace: str = "prod") -> list[EmulatedToken]:
        with self.databricks.lock:
            ws = self.databricks.workspace(workspace)
            sp = next(p for p in ws.principals if p.display_name == name)
            return [t for t in ws.tokens if t.owner_id == sp.id]

    def secrets(self, workspace: str = "prod") -> dict[tuple[str, str], str]:
        with self.databricks.lock:
            return dict(self.databricks.workspace(workspace).secrets)


@pytest.fixture
def h(databricks: DatabricksEmulator) -> Harness:
    fleet = emulator_fleet(databricks, retry_seconds=HTTP_TIMEOUT)
    for gateway in fleet.gateways():
        gateway.settle_seconds = 0.1
    client = connect_redis(None)[0]
    store = ApprovalStore(client, ttl=timedelta(hours=1))
    keys = SecretKeys(client)
    return Harness(databricks, fleet, store, keys, Operations(fleet, store, keys))


def token_of(h: Harness, owner: str = "alice@example.com") -> str:
    with h.databricks.lock:
        return next(
            t.token_id for t in h.databricks.workspace("prod").tokens if t.created_by_username == owner
        )


def assert_no_value_said(h: Harness, request: ApprovalRequest) -> None:
    for value in h.secrets().values():
        assert value not in (request.outcome_detail or "")


# ------------------------------------------------------------------------------------------------ DELETE


@pytest.mark.parametrize("acted", ACTED)
@pytest.mark.parametrize("fault", FAULTS)
def test_revoke_answer_lost(h: Harness, fault: dict[str, Any], acted: bool) -> None:
    token_id = token_of(h)
    h.databricks.lose_answer("prod", "DELETE", f"{TOKENS}/{token_id}", act=acted, **fault)
    done = h.run(RequestKind.REVOKE, token_id, h.host("prod"), RevokePlan())
    assert h.calls("DELETE", f"{TOKENS}/{token_id}") == 1, "one DELETE, never sent again"
    still_there = any(t.token_id == token_id for t in h.databricks.workspace("prod").tokens)
    assert still_there is not acted
    if acted:
        assert done.outcome == "revoked"
        assert "read back: the token is gone" in (done.outcome_detail or "")
    else:
        assert done.outcome == "failed"
        assert f"token {token_id[:12]} was NOT revoked" in (done.outcome_detail or "")
        assert "read back: the token still exists" in (done.outcome_detail or "")


def test_revoke_rate_limited_once_is_sent_again_after_retry_after(h: Harness) -> None:
    token_id = token_of(h)
    h.databricks.fail("prod", f"{TOKENS}/{token_id}", 429, times=1, retry_after=0, method="DELETE")
    done = h.run(RequestKind.REVOKE, token_id, h.host("prod"), RevokePlan())
    assert done.outcome == "revoked"
    statuses = [r.status for r in h.databricks.requests if r.method == "DELETE"]
    assert statuses == [429, 200], "429 means not processed: one more try, one deletion"


def test_revoke_rate_limited_throughout_gives_up_after_a_bounded_number_of_tries(h: Harness) -> None:
    token_id = token_of(h)
    h.databricks.fail("prod", f"{TOKENS}/{token_id}", 429, retry_after=0, method="DELETE")
    done = h.run(RequestKind.REVOKE, token_id, h.host("prod"), RevokePlan())
    assert done.outcome == "failed" and "rate limited" in (done.outcome_detail or "")
    assert h.calls("DELETE", f"{TOKENS}/{token_id}") == RATE_LIMITED_ATTEMPTS


def test_revoke_answer_lost_and_read_back_failing_says_it_is_unknown(h: Harness) -> None:
    token_id = token_of(h)
    h.databricks.lose_answer("prod", "DELETE", f"{TOKENS}/{token_id}", act=True)
    h.databricks.fail("prod", f"{TOKENS}/{token_id}", 503, method="GET", retry_after=0)
    done = h.run(RequestKind.REVOKE, token_id, h.host("prod"), RevokePlan())
    assert done.outcome == "failed"
    assert "UNKNOWN" in (done.outcome_detail or "") and "may or may not have been done" in (
        done.outcome_detail or ""
    )
    assert h.calls("DELETE", f"{TOKENS}/{token_id}") == 1


# -------------------------------------------------------------------------------------------------- create


@pytest.mark.parametrize("acted", ACTED)
@pytest.mark.parametrize("fault", FAULTS)
def test_create_answer_lost(h: Harness, fault: dict[str, Any], acted: bool) -> None:
    before = {t.token_id for t in h.sp_tokens("ml-serving")}
    h.databricks.lose_answer("prod", "POST", OBO, act=acted, **fault)
    done = h.create()
    detail = done.outcome_detail or ""
    assert h.calls("POST", OBO) == 1, "one create, never sent again"
    assert done.outcome == "failed"
    assert {t.token_id for t in h.sp_tokens("ml-serving")} == before, "no live token without its value"
    assert h.calls("POST", PUT) == 0
    if acted:
        revoked = [r.path for r in h.databricks.requests if r.method == "DELETE"]
        assert len(revoked) == 1
        assert f"token {revoked[0].rsplit('/', 1)[1][:12]} WAS created" in detail
        assert "its value was lost with the answer" in detail
        assert "was revoked again because its value could not be stored" in detail
    else:
        assert "no token created" in detail and "read back: no token was created" in detail
        assert not any(r.method == "DELETE" for r in h.databricks.requests)


def test_create_answer_lost_and_read_back_failing_names_the_marker(h: Harness) -> None:
    h.databricks.lose_answer("prod", "POST", OBO, act=True)
    h.databricks.fail("prod", "/api/2.0/preview/scim/v2/Me", 503, retry_after=0)
    done = h.create()
    detail = done.outcome_detail or ""
    assert done.outcome == "failed" and "whether a token was created is UNKNOWN" in detail
    assert f"[patbot:{done.id}]" in detail, "the admin can find the token by its tag"
    assert h.calls("POST", OBO) == 1


# ---------------------------------------------------------------------------------------------- secrets/put


@pytest.mark.parametrize("acted", ACTED)
@pytest.mark.parametrize("fault", FAULTS)
def test_store_answer_lost(h: Harness, fault: dict[str, Any], acted: bool) -> None:
    h.databricks.lose_answer("prod", "POST", PUT, act=acted, **fault)
    done = h.create()
    detail = done.outcome_detail or ""
    assert h.calls("POST", PUT) == 1, "one secrets/put, never sent again"
    assert h.calls("POST", OBO) == 1
    created = [t for t in h.sp_tokens("ml-serving") if t.token_value]
    if acted:
        assert done.outcome == "created"
        assert "created and stored in secret patbot/ml-serving-token" in detail
        assert h.secrets()[("patbot", "ml-serving-token")] == created[0].token_value
    else:
        assert done.outcome == "failed"
        assert "created but NOT stored" in detail and "read back: the secret was not written" in detail
        assert "revoked again because its value could not be stored" in detail
        assert created == [] and ("patbot", "ml-serving-token") not in h.secrets()
    assert_no_value_said(h, done)


@pytest.mark.parametrize("acted", ACTED)
def test_rotation_store_answer_lost(h: Harness, acted: bool) -> None:
    old = next(t for t in h.sp_tokens("etl-pipeline") if t.comment == "nightly ETL")
    h.databricks.lose_answer("prod", "POST", PUT, act=acted, status=503, retry_after=0)
    done = h.rotate(old.token_id)
    detail = done.outcome_detail or ""
    assert h.calls("POST", PUT) == 1
    live = {t.token_id: t for t in h.sp_tokens("etl-pipeline")}
    if acted:
        assert done.outcome == "rotated" and old.token_id not in live
        new = [t for t in live.values() if t.token_value]
        assert h.secrets()[("patbot", "etl-pipeline-token")] == new[0].token_value
    else:
        assert done.outcome == "failed" and "NOT stored" in detail and "untouched" in detail
        assert old.token_id in live and not [t for t in live.values() if t.token_value]


# ------------------------------------------------------------------------------------------ workspace-conf


@pytest.mark.parametrize("acted", ACTED)
@pytest.mark.parametrize("fault", FAULTS)
def test_policy_answer_lost(h: Harness, fault: dict[str, Any], acted: bool) -> None:
    h.databricks.lose_answer("prod", "PATCH", CONF, act=acted, **fault)
    done = h.run(RequestKind.POLICY, "max-lifetime:x", h.host("prod"), PolicyPlan(30, (h.host("prod"),)))
    detail = done.outcome_detail or ""
    assert h.calls("PATCH", CONF) == 1, "one PATCH, never sent again"
    assert h.databricks.workspace("prod").conf["maxTokenLifetimeDays"] == ("30" if acted else "90")
    if acted:
        assert done.outcome == "applied" and "read back: it is set" in detail
    else:
        assert done.outcome == "failed" and "NOT applied" in detail and "it is still 90" in detail


# ------------------------------------------------------------------------------ no value is ever lost


def live_values_are_stored(h: Harness, principal: str) -> None:
    stored = set(h.secrets().values())
    for token in h.sp_tokens(principal):
        if token.token_value:
            assert token.token_value in stored, (
                f"token {token.token_id[:12]} is live but its value is nowhere"
            )


def test_two_creates_for_one_principal_keep_both_values(h: Harness) -> None:
    first = h.create()
    second = h.create()
    assert first.outcome == second.outcome == "created"
    assert "secret patbot/ml-serving-token " in (first.outcome_detail or "")
    assert "secret patbot/ml-serving-token-2 (not ml-serving-token" not in (second.outcome_detail or "")
    assert "secret patbot/ml-serving-token-2" in (second.outcome_detail or "")
    assert len([t for t in h.sp_tokens("ml-serving") if t.token_value]) == 2
    live_values_are_stored(h, "ml-serving")


def test_the_plan_names_the_fresh_key_and_why(h: Harness) -> None:
    first = h.create()
    new_id = next(t.token_id for t in h.sp_tokens("ml-serving") if t.token_value)
    plan = plan_create(
        h.fleet,
        CreateAsk("ml-serving", "7d", "prod", ""),
        Rules(90, "patbot", h.keys),
    )
    assert first.outcome == "created"
    assert plan.secret_key == "ml-serving-token-2"
    assert plan.stored().secret_key_note == f"ml-serving-token holds the value of live token {new_id[:12]}"


def test_two_approved_creates_at_once_write_different_keys(h: Harness) -> None:
    plans = [
        plan_create(
            h.fleet,
            CreateAsk("ml-serving", "7d", "prod", f"job {n}"),
            Rules(90, "patbot", h.keys),
        )
        for n in range(2)
    ]
    assert plans[0].secret_key == plans[1].secret_key == "ml-serving-token", "both planned before either ran"
    requests = []
    for plan in plans:
        request = h.store.create(
            RequestDraft(
                RequestKind.CREATE,
                f"{plan.principal.name}@{plan.comment}",
                plan.workspace.host,
                "U",
                "",
                plan.stored(),
            )
        )
        h.store.decide(request.id, RequestState.APPROVED, "U_APPROVER")
        requests.append(h.store.get(request.id))
    barrier = threading.Barrier(2)

    def execute(request: ApprovalRequest) -> None:
        barrier.wait()
        h.ops.execute(request)

    threads = [threading.Thread(target=execute, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = [h.store.get(r.id) for r in requests]
    assert [r.outcome for r in outcomes] == ["created", "created"], [r.outcome_detail for r in outcomes]
    assert {k for _, k in h.secrets()} == {"ml-serving-token", "ml-serving-token-2"}
    live_values_are_stored(h, "ml-serving")


def test_a_rotation_then_a_create_keep_both_values(h: Harness) -> None:
    h.create()
    created = next(t for t in h.sp_tokens("ml-serving") if t.token_value)
    rotated = h.rotate(created.token_id)
    assert rotated.outcome == "rotated"
    assert "secret patbot/ml-serving-token;" in (rotated.outcome_detail or ""), "a rotation reuses the key"
    again = h.create()
    assert again.outcome == "created" and "patbot/ml-serving-token-2" in (again.outcome_detail or "")
    live_values_are_stored(h, "ml-serving")


def test_a_key_holding_an_unknown_value_is_never_overwritten(h: Harness) -> None:
    with h.databricks.lock:
        h.databricks.workspace("prod").secrets[("patbot", "ml-serving-token")] = "written by someone else"
    done = h.create()
    assert done.outcome == "created" and "patbot/ml-serving-token-2" in (done.outcome_detail or "")
    assert "already holds a value patbot did not write" in (done.outcome_detail or "")
    assert h.secrets()[("patbot", "ml-serving-token")] == "written by someone else"


def test_rotation_reuses_a_key_known_only_from_before_holders_were_tracked(h: Harness) -> None:
    old = next(t for t in h.sp_tokens("etl-pipeline") if t.comment == "nightly ETL")
    with h.databricks.lock:
        h.databricks.workspace("prod").secrets[("patbot", "etl-key")] = "old value"
    h.keys._redis.hset("patbot:secret-keys", old.token_id, "patbot/etl-key")
    done = h.rotate(old.token_id)
    assert done.outcome == "rotated" and "secret patbot/etl-key;" in (done.outcome_detail or "")
    live_values_are_stored(h, "etl-pipeline")


def test_a_key_holding_a_revoked_tokens_value_is_reused(h: Harness) -> None:
    h.create()
    created = next(t for t in h.sp_tokens("ml-serving") if t.token_value)
    assert h.run(RequestKind.REVOKE, created.token_id, h.host("prod"), RevokePlan()).outcome == "revoked"
    again = h.create()
    assert "secret patbot/ml-serving-token " in (again.outcome_detail or "")


def test_rotation_markers_never_pile_up(h: Harness) -> None:
    old = next(t for t in h.sp_tokens("etl-pipeline") if t.comment == "nightly ETL")
    first = h.rotate(old.token_id)
    one = next(t for t in h.sp_tokens("etl-pipeline") if t.token_value)
    second = h.rotate(one.token_id)
    two = next(t for t in h.sp_tokens("etl-pipeline") if t.token_value)
    assert first.outcome == second.outcome == "rotated"
    assert two.comment.startswith("nightly ETL (rotated ")
    assert two.comment.count("(rotated ") == 1 and two.comment.count("[patbot:") == 1
    assert two.comment.endswith(f"[patbot:{second.id}]")
    live_values_are_stored(h, "etl-pipeline")
