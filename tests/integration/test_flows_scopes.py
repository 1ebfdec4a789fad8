"""The scope flows without Slack: scoped creates, `/pat scope`, and rotation keeping a token's scopes. Fake
People / Notifier ports, the approval store on fakeredis, the Databricks emulator through the real SDK."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.approvals import RequestState
from bot.flows.create import CreateAsk, request_create
from bot.flows.decide import decide
from bot.flows.deps import FlowDeps
from bot.flows.results import Decided, NotAllowed, Refused, SelfConfirm, SentToApprovers
from bot.flows.rotate import request_rotate
from bot.flows.scope import ScopeAsk, request_scope, widens
from bot.sandbox.databricks_emulator import DatabricksEmulator, EmulatedToken
from tests.integration import test_flows
from tests.integration.test_flows import ALICE, BOB, GRACE, FakeNotifier

pytestmark = pytest.mark.integration

# The flow fixtures of test_flows: fake People / Notifier, the store on fakeredis, an emulated fleet.
clock, deps, notifier = test_flows.clock, test_flows.deps, test_flows.notifier

TOKENS = "/api/2.0/token-management/tokens/"
OBO = "/api/2.0/token-management/on-behalf-of/tokens"


def patches(databricks: DatabricksEmulator) -> list[dict]:
    return [r.body for r in databricks.requests if r.method == "PATCH" and r.path.startswith(TOKENS)]


def obo_bodies(databricks: DatabricksEmulator) -> list[dict]:
    return [r.body for r in databricks.requests if r.method == "POST" and r.path == OBO]


def named(databricks: DatabricksEmulator, comment: str, workspace: str = "prod") -> EmulatedToken:
    with databricks.lock:
        return next(t for t in databricks.workspace(workspace).tokens if t.comment == comment)


def seen_using(databricks: DatabricksEmulator, comment: str, used: list[str]) -> EmulatedToken:
    with databricks.lock:
        token = named(databricks, comment)
        token.autoscope_state, token.inferred_scopes = "AUTOSCOPE_STATE_COMPLETED", list(used)
        return token


@pytest.mark.parametrize(
    ("old", "new", "wider"),
    [
        ((), ("sql",), False),  # full access → anything is narrower
        (("all-apis",), ("sql", "jobs"), False),
        (("sql",), ("sql:read",), False),
        (("sql",), ("sql",), False),
        (("sql",), ("sql", "jobs:read"), True),
        (("jobs:read",), ("jobs",), True),
        (("sql",), ("all-apis",), True),  # full access is the widest
        (("sql:read",), ("sql:restricted-query",), True),
    ],
)
def test_widens(old: tuple[str, ...], new: tuple[str, ...], wider: bool) -> None:
    assert widens(old, new) is wider


# --------------------------------------------------------------------------- create


def test_a_scoped_create_carries_its_scopes_to_databricks(deps: FlowDeps, notifier: FakeNotifier, databricks):
    asked = request_create(deps, BOB, CreateAsk("etl-pipeline", "30d", "prod", "load", ("sql", "JOBS:read")))
    assert isinstance(asked, SentToApprovers)
    done = decide(deps, asked.request.id, GRACE, RequestState.APPROVED)
    assert isinstance(done, Decided) and done.request.outcome == "created"
    (body,) = obo_bodies(databricks)
    assert body["scopes"] == ["sql", "jobs:read"], "scopes are sent as Databricks spells them"


def test_an_unknown_scope_is_refused_before_any_request(deps: FlowDeps, notifier: FakeNotifier, databricks):
    refused = request_create(deps, BOB, CreateAsk("etl-pipeline", "30d", "prod", scopes=("sql", "nope")))
    assert isinstance(refused, Refused) and "Unknown API scope `nope`" in refused.reason
    assert notifier.posted == [] and deps.store.pending() == [] and databricks.count_requests() == 0


def test_a_scopeless_create_is_refused_when_scopes_are_required(deps: FlowDeps, notifier, databricks):
    refused = request_create(deps, BOB, CreateAsk("etl-pipeline", "30d", "prod"))
    assert isinstance(refused, Refused)
    assert "`scopes=sql,jobs:read`" in refused.reason and "`autoscope`" in refused.reason
    assert notifier.posted == [] and databricks.count_requests() == 0
    lenient = replace(deps, settings=deps.settings.model_copy(update={"require_scopes": False}))
    assert isinstance(request_create(lenient, BOB, CreateAsk("etl-pipeline", "30d", "prod")), SentToApprovers)


# --------------------------------------------------------------------------- /pat scope


def test_the_owner_narrowing_confirms_then_patches_once(deps: FlowDeps, notifier: FakeNotifier, databricks):
    token = seen_using(databricks, "dbt prod", ["sql", "unity-catalog:read"])
    asked = request_scope(deps, ALICE, ScopeAsk(token.token_id[:12], suggested=True))
    assert isinstance(asked, SelfConfirm) and asked.request.self_service
    assert notifier.posted == [] and patches(databricks) == []
    done = decide(deps, asked.request.id, ALICE, RequestState.APPROVED)
    assert isinstance(done, Decided) and done.request.outcome == "narrowed"
    assert "full access → sql, unity-catalog:read" in (done.request.outcome_detail or "")
    assert patches(databricks) == [
        {
            "token": {"token_id": token.token_id, "scopes": ["sql", "unity-catalog:read"]},
            "update_mask": "scopes",
        }
    ]
    again = decide(deps, asked.request.id, ALICE, RequestState.APPROVED)
    assert isinstance(again, NotAllowed) and len(patches(databricks)) == 1


def test_someone_else_cannot_confirm_the_owners_narrowing(deps: FlowDeps, databricks):
    token = seen_using(databricks, "dbt prod", ["sql"])
    asked = request_scope(deps, ALICE, ScopeAsk(token.token_id, suggested=True))
    assert isinstance(asked, SelfConfirm)
    assert isinstance(decide(deps, asked.request.id, GRACE, RequestState.APPROVED), NotAllowed)
    assert patches(databricks) == []


def test_anyone_else_and_any_widening_goes_to_the_approvers(
    deps: FlowDeps, notifier: FakeNotifier, databricks
):
    alices = seen_using(databricks, "dbt prod", ["sql"])
    by_bob = request_scope(deps, BOB, ScopeAsk(alices.token_id, ("sql",)))
    assert isinstance(by_bob, SentToApprovers) and not by_bob.request.self_service
    bobs = named(databricks, "Power BI refresh")  # scopes: sql
    widening = request_scope(deps, BOB, ScopeAsk(bobs.token_id, ("sql", "jobs")))
    assert isinstance(widening, SentToApprovers) and not widening.request.self_service
    assert patches(databricks) == []
    refused = decide(deps, widening.request.id, BOB, RequestState.APPROVED)
    assert isinstance(refused, NotAllowed)
    done = decide(deps, widening.request.id, GRACE, RequestState.APPROVED)
    assert isinstance(done, Decided) and done.request.outcome == "widened"
    assert "sql → sql, jobs" in (done.request.outcome_detail or "")
    assert [p["token"]["scopes"] for p in patches(databricks)] == [["sql", "jobs"]]


def test_suggested_needs_known_usage(deps: FlowDeps, databricks):
    bobs = named(databricks, "Power BI refresh")
    refused = request_scope(deps, BOB, ScopeAsk(bobs.token_id, suggested=True))
    assert isinstance(refused, Refused) and "has not inferred" in refused.reason
    still = seen_using(databricks, "dbt prod", ["sql"])
    with databricks.lock:
        still.autoscope_state = "AUTOSCOPE_STATE_RUNNING"
    refused = request_scope(deps, ALICE, ScopeAsk(still.token_id, suggested=True))
    assert isinstance(refused, Refused) and "has not inferred" in refused.reason


def test_a_lost_patch_answer_is_read_back_not_resent(deps: FlowDeps, databricks):
    token = seen_using(databricks, "dbt prod", ["sql"])
    asked = request_scope(deps, ALICE, ScopeAsk(token.token_id, suggested=True))
    assert isinstance(asked, SelfConfirm)
    databricks.fail("prod", f"{TOKENS}{token.token_id}", 503, method="PATCH")
    done = decide(deps, asked.request.id, ALICE, RequestState.APPROVED)
    assert isinstance(done, Decided) and done.request.outcome == "failed"
    assert len(patches(databricks)) == 1, "a write whose answer was lost is never sent again"
    assert "NOT" in (done.request.outcome_detail or "") and named(databricks, "dbt prod").scopes == []


# --------------------------------------------------------------------------- rotation


def test_rotation_keeps_scopes_and_autoscope(deps: FlowDeps, databricks):
    old = named(databricks, "nightly ETL")
    with databricks.lock:
        old.autoscope_state = "AUTOSCOPE_STATE_COMPLETED"
    asked = request_rotate(deps, BOB, old.token_id)
    assert isinstance(asked, SentToApprovers)
    done = decide(deps, asked.request.id, GRACE, RequestState.APPROVED)
    assert isinstance(done, Decided) and done.request.outcome == "rotated"
    (body,) = obo_bodies(databricks)
    assert body["scopes"] == ["sql", "unity-catalog"] and body["autoscope_enabled"] is True
