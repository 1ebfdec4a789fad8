"""The use cases without Slack: plain calls, fake People / Notifier ports, the real approval store on
fakeredis, and the Databricks emulator through the real SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import fakeredis
import pytest

from bot.approvals import ApprovalRequest, ApprovalStore, PolicyPlan, RequestState
from bot.errors import NotificationFailed
from bot.flows.audit import AuditTarget, audit_for, own_tokens
from bot.flows.decide import decide, sweep_expired
from bot.flows.deps import FlowDeps
from bot.flows.policy import policy_view, request_max_lifetime
from bot.flows.results import (
    Decided,
    FleetAudit,
    GuideSent,
    NotAllowed,
    OwnAudit,
    PolicyView,
    Refused,
    SelfConfirm,
    SentToApprovers,
)
from bot.flows.revoke import Origin, request_revoke
from bot.flows.rotate import request_rotate
from bot.governance.models import PrincipalType, Token
from bot.operations import Operations, SecretKeys
from bot.sandbox.databricks_emulator import DatabricksEmulator
from bot.services import policy_from
from bot.settings import Settings
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration

ALICE, BOB, GRACE, HEIDI, ZOE = "UALICE", "UBOB", "UGRACE", "UHEIDI", "UZOE"
EMAILS = {
    ALICE: "alice@example.com",
    BOB: "bob@example.com",
    GRACE: "grace@example.com",
    HEIDI: "heidi@example.com",
}


class FakePeople:
    """Alice and Bob own tokens; Grace and Heidi approve; Zoe exists in chat only."""

    def email_of(self, user_id: str) -> str:
        return EMAILS.get(user_id, f"{user_id.lower()}@example.com")

    def is_approver(self, user_id: str) -> bool:
        return user_id in {GRACE, HEIDI}

    def user_for_email(self, email: str) -> str | None:
        return next((u for u, e in EMAILS.items() if e == email), None)


@dataclass
class FakeNotifier:
    posted: list[ApprovalRequest] = field(default_factory=list)
    outcomes: list[ApprovalRequest] = field(default_factory=list)
    dms: list[tuple[str, str, bool]] = field(default_factory=list)
    guides: list[tuple[str, str, str]] = field(default_factory=list)
    reports: list[tuple[str, str]] = field(default_factory=list)
    fail_posting: bool = False

    def post_request(self, request: ApprovalRequest) -> tuple[str, str]:
        if self.fail_posting:
            raise NotificationFailed("Slack refused a call patbot needed (channel_not_found).")
        self.posted.append(request)
        return "CADMIN", f"{len(self.posted)}.000"

    def show_outcome(self, request: ApprovalRequest) -> None:
        self.outcomes.append(request)

    def tell_decision(self, user_id: str, request: ApprovalRequest, *, to_owner: bool) -> None:
        self.dms.append((user_id, request.id, to_owner))

    def guide_rotation(self, user_id: str, token: Token, *, requester: str, max_days: int) -> None:
        self.guides.append((user_id, token.token_id, requester))

    def send_report(self, user_id: str, csv_text: str, label: str) -> bool:
        self.reports.append((user_id, label))
        return True


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(now: datetime) -> MovableClock:
    return MovableClock(now)


@pytest.fixture
def deps(databricks: DatabricksEmulator, notifier: FakeNotifier, clock: MovableClock) -> FlowDeps:
    settings = Settings(_env_file=None, secret_scope="patbot")  # type: ignore[call-arg]
    redis = fakeredis.FakeRedis(decode_responses=True)
    store = ApprovalStore(redis, ttl=timedelta(hours=24), clock=clock)
    fleet = emulator_fleet(databricks, read_ttl=0)
    return FlowDeps(
        settings=settings,
        fleet=fleet,
        policy=policy_from(settings),
        store=store,
        executor=Operations(fleet, store, SecretKeys(redis)),
        people=FakePeople(),
        notifier=notifier,
        clock=clock,
    )


def token_of(deps: FlowDeps, email: str, kind: PrincipalType = PrincipalType.USER) -> Token:
    report = deps.audit(owner=email)
    return next(t.token for t in report.tokens if t.principal_type is kind)


def deletes(databricks: DatabricksEmulator) -> int:
    return databricks.count_requests("DELETE", "/api/2.0/token-management/tokens/")


def test_owner_confirms_own_revoke_without_an_approver(deps, notifier, databricks):
    token = token_of(deps, "alice@example.com")
    asked = request_revoke(deps, ALICE, token.token_id[:12], "done with it")
    assert isinstance(asked, SelfConfirm) and asked.request.self_service
    assert notifier.posted == []
    done = decide(deps, asked.request.id, ALICE, RequestState.APPROVED)
    assert isinstance(done, Decided) and done.request.outcome == "revoked"
    assert deletes(databricks) == 1
    assert notifier.outcomes == [] and notifier.dms == []  # the owner sees it in place, nobody else is told


def test_someone_elses_token_goes_to_the_approvers_and_one_approval_acts_once(deps, notifier, databricks):
    token = token_of(deps, "alice@example.com")
    asked = request_revoke(deps, BOB, token.token_id, "left the team")
    assert isinstance(asked, SentToApprovers) and [r.id for r in notifier.posted] == [asked.request.id]
    assert decide(deps, asked.request.id, ZOE, RequestState.APPROVED) == NotAllowed(
        "Only approvers can approve or deny requests."
    )
    assert isinstance(decide(deps, asked.request.id, GRACE, RequestState.APPROVED), Decided)
    again = decide(deps, asked.request.id, HEIDI, RequestState.APPROVED)
    assert isinstance(again, NotAllowed) and "already approved" in again.reason
    assert deletes(databricks) == 1
    assert [r.state for r in notifier.outcomes] == [RequestState.APPROVED]
    assert notifier.dms == [(BOB, asked.request.id, False), (ALICE, asked.request.id, True)]


def test_an_approver_cannot_approve_their_own_request(deps, databricks):
    token = token_of(deps, "bob@example.com")
    asked = request_revoke(deps, GRACE, token.token_id, "")
    assert isinstance(asked, SentToApprovers)
    refused = decide(deps, asked.request.id, GRACE, RequestState.APPROVED)
    assert isinstance(refused, NotAllowed) and "four eyes" in refused.reason
    assert deletes(databricks) == 0


def test_a_request_nobody_can_see_is_cancelled(deps, notifier):
    notifier.fail_posting = True
    token = token_of(deps, "alice@example.com")
    refused = request_revoke(deps, BOB, token.token_id, "")
    assert isinstance(refused, Refused) and "channel_not_found" in refused.reason
    assert deps.store.pending() == []


def test_asking_again_with_a_new_reason_replaces_the_owners_confirmation(deps):
    token = token_of(deps, "alice@example.com")
    first = request_revoke(deps, ALICE, token.token_id, "first reason")
    second = request_revoke(deps, ALICE, token.token_id, "second reason")
    assert isinstance(first, SelfConfirm) and isinstance(second, SelfConfirm)
    assert second.request.reason == "second reason"
    assert deps.store.get(first.request.id).state is RequestState.CANCELLED
    same = request_revoke(deps, ALICE, token.token_id, "second reason")
    assert isinstance(same, SelfConfirm) and same.request.id == second.request.id


def test_buttons_give_the_request_the_reason_of_where_they_were_clicked(deps):
    token = token_of(deps, "alice@example.com")
    asked = request_revoke(deps, ALICE, token.token_id, origin=Origin.ROTATION)
    assert isinstance(asked, SelfConfirm) and "rotation" in asked.request.reason


def test_unknown_and_ambiguous_tokens_are_refused(deps):
    unknown = request_revoke(deps, BOB, "ffffffffffff", "")
    assert isinstance(unknown, Refused) and "No token" in unknown.reason
    ids = [t.token.token_id for t in deps.audit().tokens]
    shared = next(a[:10] for a in ids for b in ids if a != b and a[:10] == b[:10])
    ambiguous = request_revoke(deps, BOB, shared, "")
    assert isinstance(ambiguous, Refused) and "give more characters" in ambiguous.reason


def test_an_expired_request_changes_nothing_and_its_message_is_updated(deps, notifier, databricks, clock):
    token = token_of(deps, "alice@example.com")
    asked = request_revoke(deps, BOB, token.token_id, "")
    assert isinstance(asked, SentToApprovers)
    clock.now += timedelta(hours=25)
    assert sweep_expired(deps) == 1 and [r.state for r in notifier.outcomes] == [RequestState.EXPIRED]
    late = decide(deps, asked.request.id, GRACE, RequestState.APPROVED)
    assert isinstance(late, NotAllowed) and "expired" in late.reason
    assert deletes(databricks) == 0


def test_only_approvers_see_the_fleet_and_get_the_csv(deps, notifier):
    refused = audit_for(deps, BOB, AuditTarget("all"))
    assert isinstance(refused, Refused) and "Only approvers" in refused.reason
    fleet = audit_for(deps, GRACE, AuditTarget("all"))
    assert (
        isinstance(fleet, FleetAudit) and fleet.csv_sent and notifier.reports == [(GRACE, "all workspaces")]
    )
    own = own_tokens(deps, ALICE)
    assert isinstance(own, OwnAudit) and {t.token.owner for t in own.report.tokens} == {"alice@example.com"}


def test_rotating_a_users_token_guides_its_owner(deps, notifier):
    token = token_of(deps, "alice@example.com")
    guided = request_rotate(deps, BOB, token.token_id)
    assert guided == GuideSent(token, to_self=False)
    assert notifier.guides == [(ALICE, token.token_id, BOB)]
    own = request_rotate(deps, ALICE, token.token_id)
    assert isinstance(own, GuideSent) and own.to_self


def test_rotating_a_token_of_someone_not_in_chat_is_refused(deps, notifier):
    token = token_of(deps, "carol@example.com")
    refused = request_rotate(deps, BOB, token.token_id)
    assert isinstance(refused, Refused) and "not in this Slack workspace" in refused.reason
    assert notifier.guides == []


def test_policy_is_for_approvers(deps, notifier):
    assert isinstance(policy_view(deps, BOB), Refused)
    view = policy_view(deps, GRACE)
    assert isinstance(view, PolicyView) and {w.workspace.name for w in view.workspaces} == {
        "prod",
        "staging",
        "analytics",
    }
    assert isinstance(request_max_lifetime(deps, BOB, "30", ()), Refused)
    asked = request_max_lifetime(deps, GRACE, "30", ("prod",))
    assert isinstance(asked, SentToApprovers) and notifier.posted[-1].plan == PolicyPlan(
        30, (deps.fleet.select("prod")[0].host,), "prod"
    )
