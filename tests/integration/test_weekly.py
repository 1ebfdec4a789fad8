"""The weekly job end to end: Databricks emulator → audit → Slack emulator, real redis-server.

200 token owners; Slack answers part of the DMs with 429 + Retry-After. The Slack emulator runs at
50 times real time and the campaign sleeps in emulated seconds, so Retry-After waits cost milliseconds.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from slack_sdk import WebClient

from bot.governance.models import Finding, FleetReport
from bot.sandbox.databricks_emulator import (
    DatabricksEmulator,
    EmulatedPrincipal,
    EmulatedToken,
    EmulatedWorkspace,
)
from bot.sandbox.slack_emulator import SlackEmulator
from bot.scheduler import CronSchedule, WeeklyScheduler, start_scheduler
from bot.services import Services, policy_from
from bot.settings import Settings
from bot.weekly import (
    Claim,
    RatePacer,
    ReminderLedger,
    ReminderResult,
    RemindOptions,
    SlackOwners,
    SummaryOptions,
    WeekRuns,
    audit_now,
    iso_week,
    plan_reminders,
    remind,
    run_weekly,
    summary,
    weekly_job,
)
from entrypoints.bootstrap import Application
from entrypoints.weekly import run_weekly_command
from handlers.blocks import ACTION_REVOKE_OWN
from handlers.weekly_blocks import reminder_message, summary_message
from handlers.weekly_chat import SlackChat
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
WEEK = iso_week(NOW)
OWNERS = 200
DELETED = {5, 50, 105}  # eligible owners whose Slack accounts are deactivated
GHOSTS = ("ghost1@example.com", "ghost2@example.com", "ghost3@example.com", "ghost4@example.com")
MIXED_CASE = 7  # Slack holds this owner's e-mail as User007@Example.COM
ADMIN_CHANNEL = "CADMIN0001"
BOT_TOKEN = "xoxb-test"
SCALE = 50.0


def parts_of(services: Services, chat: SlackChat | None = None) -> Application:
    """The composition root around these services (and this chat port for the weekly job)."""
    parts = Application(services.settings).replace(services=services)
    return parts.replace(weekly_chat=chat) if chat is not None else parts


def email(i: int) -> str:
    return f"user{i:03d}@example.com"


def eligible(i: int) -> bool:
    return i % 4 != 0  # 1: stale, 2: never expires, 3: both; 0: a clean token only


ELIGIBLE_IN_SLACK = {email(i) for i in range(1, OWNERS + 1) if eligible(i) and i not in DELETED}
NOT_IN_SLACK = sorted({email(i) for i in DELETED} | set(GHOSTS))


# --------------------------------------------------------------------------- fleet and Slack


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day_ms(moment: datetime) -> int:
    return _ms(datetime(moment.year, moment.month, moment.day, tzinfo=UTC))


def _token(ws: EmulatedWorkspace, owner: EmulatedPrincipal, kind: str, n: int) -> EmulatedToken:
    created, expires, used = NOW - timedelta(days=60), NOW + timedelta(days=300), NOW - timedelta(days=1)
    if kind == "clean":
        created, expires = NOW - timedelta(days=10), NOW + timedelta(days=20)
    elif kind == "stale":
        used = NOW - timedelta(days=45)
    elif kind == "forever":
        expires = None
    return EmulatedToken(
        token_id=hashlib.sha256(f"{ws.name}:{owner.id}:{n}".encode()).hexdigest()[:32],
        owner_id=owner.id,
        created_by_username=owner.login,
        comment=f"{kind} token",
        creation_time=_ms(created),
        expiry_time=_ms(expires) if expires else -1,
        last_used_day=_day_ms(used),
        scopes=["sql"],
        workspace_id=ws.workspace_id,
    )


def build_fleet(*, broken_workspace: bool = False) -> list[EmulatedWorkspace]:
    users = [
        EmulatedPrincipal(id=10_000 + i, kind="user", display_name=f"User {i:03d}", user_name=email(i))
        for i in range(1, OWNERS + 1)
    ]
    ghosts = [
        EmulatedPrincipal(id=20_000 + k, kind="user", display_name=f"Ghost {k}", user_name=g)
        for k, g in enumerate(GHOSTS)
    ]
    sps = [
        EmulatedPrincipal(
            id=30_000 + k,
            kind="service_principal",
            display_name=f"etl-{k}",
            application_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"etl-{k}.example.com")),
        )
        for k in range(2)
    ]
    principals = users + ghosts + sps
    names = ["alpha", "beta"] + (["gamma"] if broken_workspace else [])
    fleet = [
        EmulatedWorkspace(name=name, workspace_id=7_000 + n, principals=[copy.copy(p) for p in principals])
        for n, name in enumerate(names)
    ]
    alpha, beta = fleet[0], fleet[1]
    counter = itertools.count()
    for i, user in enumerate(users, start=1):
        kinds = {
            0: [("alpha", "clean")],
            1: [("alpha", "stale"), ("beta", "clean")],
            2: [("beta", "forever")],
        }
        for ws_name, kind in kinds.get(i % 4, [("alpha", "stale"), ("beta", "forever")]):
            ws = alpha if ws_name == "alpha" else beta
            ws.tokens.append(_token(ws, user, kind, next(counter)))
    for ghost in ghosts:
        alpha.tokens.append(_token(alpha, ghost, "stale", next(counter)))
    for sp in sps:
        alpha.tokens.append(_token(alpha, sp, "forever", next(counter)))
    if broken_workspace:
        fleet[2].tokens.append(_token(fleet[2], users[0], "forever", next(counter)))
    return fleet


def add_people(slack: SlackEmulator) -> dict[str, str]:
    """Slack users for every owner (some deactivated), plus bystanders; e-mail → user ID."""
    ids = {}
    for i in range(1, OWNERS + 1):
        address = "User007@Example.COM" if i == MIXED_CASE else email(i)
        ids[email(i)] = slack.add_user(f"user{i:03d}", email=address, deleted=i in DELETED).id
    slack.add_user("bystander", email="bystander@example.com")
    slack.add_user("integration-bot", email="bot@example.com", is_bot=True)
    return ids


@pytest.fixture
def databricks() -> Iterator[DatabricksEmulator]:
    with DatabricksEmulator(build_fleet(broken_workspace=True)) as emulator:
        emulator.fail("gamma", "/api/2.0/token-management/tokens", 403)
        yield emulator


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=BOT_TOKEN, time_scale=SCALE) as emulator:
        yield emulator


@pytest.fixture
def user_ids(slack: SlackEmulator) -> dict[str, str]:
    return add_people(slack)


def make_services(
    slack: SlackEmulator, databricks: DatabricksEmulator, redis_url: str, **overrides: Any
) -> Services:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_api_url": slack.api_url,
        "admin_channel": ADMIN_CHANNEL,
        "approvers": ["UAPPROVER1"],
        "databricks_host": "https://placeholder.invalid",
        "scheduler": "off",
    }
    values.update(overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    return Services(
        settings=settings,
        fleet=emulator_fleet(databricks, read_ttl=0),  # the tests change the fleet between audits
        policy=policy_from(settings),
        clock=lambda: NOW,
        redis=redis.Redis.from_url(redis_url, decode_responses=True),
    )


@pytest.fixture
def services(slack: SlackEmulator, databricks: DatabricksEmulator, redis_url: str, user_ids) -> Services:
    return make_services(slack, databricks, redis_url)


@pytest.fixture
def report(services: Services) -> FleetReport:
    return audit_now(services, NOW)


def client_for(slack: SlackEmulator) -> SlackChat:
    return SlackChat(WebClient(token=BOT_TOKEN, base_url=slack.api_url))


def run_remind(services: Services, slack: SlackEmulator, client: WebClient | None = None, **kw: Any):
    kw.setdefault("sleep", slack.sleep)
    kw.setdefault("clock", slack.now)
    kw.setdefault("poll_seconds", 0.5)
    chat = SlackChat(client) if client is not None else client_for(slack)
    return remind(services, chat, reminder_message, RemindOptions(**kw))


def dms_by_user(slack: SlackEmulator, user_ids: dict[str, str]) -> Counter[str]:
    """How many DMs each owner (by e-mail) has."""
    return Counter({e: len(slack.messages_to(uid)) for e, uid in user_ids.items() if slack.messages_to(uid)})


def assert_exactly_one_each(slack: SlackEmulator, user_ids: dict[str, str]) -> None:
    got = dms_by_user(slack, user_ids)
    assert set(got) == ELIGIBLE_IN_SLACK, "every eligible owner, and nobody else"
    assert set(got.values()) == {1}, [e for e, n in got.items() if n != 1]
    dms = [c for c in slack.calls("chat.postMessage", ok_only=True) if c.args["channel"] != ADMIN_CHANNEL]
    assert len(dms) == len(ELIGIBLE_IN_SLACK)


# --------------------------------------------------------------------------- reminders


def test_every_eligible_owner_gets_exactly_one_dm_despite_429s(
    services: Services, slack: SlackEmulator, user_ids: dict[str, str], report: FleetReport
) -> None:
    slack.rate_limit("chat.postMessage", every=7, retry_after=1)
    result = run_remind(services, slack)

    assert_exactly_one_each(slack, user_ids)
    assert len(slack.calls("chat.postMessage")) > len(ELIGIBLE_IN_SLACK), "some DMs were answered 429"
    assert sorted(result.sent) == sorted(ELIGIBLE_IN_SLACK)
    assert result.failed == {} and result.in_doubt == [] and result.complete is False  # gamma unreadable
    assert result.not_in_slack == NOT_IN_SLACK
    assert list(result.unreadable_workspaces) == ["gamma"]
    assert {t.assessment.owner_display for t in result.service_principal_tokens} == {"etl-0", "etl-1"}
    assert not slack.dm_channel_of(user_ids["user004@example.com"]), "a clean owner gets nothing"

    # Each DM lists exactly the owner's stale / non-expiring tokens, a Revoke button (token ID only) each.
    expected: dict[str, set[str]] = {}
    for item in report.tokens:
        if {Finding.STALE, Finding.NON_EXPIRING} & set(item.findings):
            expected.setdefault(item.token.owner, set()).add(item.token.token_id)
    for address in (email(1), email(2), email(3), email(MIXED_CASE)):
        (message,) = slack.messages_to(user_ids[address])
        buttons = [b["accessory"] for b in message.blocks if "accessory" in b]
        assert {b["action_id"] for b in buttons} == {ACTION_REVOKE_OWN}
        assert {b["value"] for b in buttons} == expected[address]
        assert "stale or never expire" in message.text

    again = run_remind(services, slack)
    assert again.sent == [] and sorted(again.skipped_already_sent) == sorted(ELIGIBLE_IN_SLACK)
    assert_exactly_one_each(slack, user_ids)


def test_calls_per_owner_stay_close_to_one(
    services: Services, slack: SlackEmulator, user_ids: dict[str, str], report: FleetReport
) -> None:
    slack.set_rate_limit("chat.postMessage", per_minute=600, burst=10)
    result = run_remind(services, slack, report=report)
    assert len(result.sent) == len(ELIGIBLE_IN_SLACK)
    calls = len(slack.calls())
    assert calls == result.slack_calls
    assert calls / len(ELIGIBLE_IN_SLACK) <= 1.1
    assert [c.args.get("limit") for c in slack.calls("users.list")] == ["200", "200"]


def test_a_run_killed_half_way_resumes_without_duplicates(
    services: Services, slack: SlackEmulator, user_ids: dict[str, str], report: FleetReport
) -> None:
    class ProcessKilled(BaseException):
        pass

    posts = itertools.count(1)

    class DyingClient(WebClient):
        """Dies right after Slack confirmed the 60th DM, before patbot could record it."""

        def chat_postMessage(self, **kwargs: Any) -> Any:
            response = super().chat_postMessage(**kwargs)
            if next(posts) == 60:
                raise ProcessKilled
            return response

    slack.rate_limit("chat.postMessage", every=11, retry_after=1)
    with pytest.raises(ProcessKilled):
        run_remind(services, slack, DyingClient(token=BOT_TOKEN, base_url=slack.api_url), lease_seconds=1)
    delivered = len(slack.calls("chat.postMessage", ok_only=True))
    assert 60 <= delivered < len(ELIGIBLE_IN_SLACK)

    resumed = run_remind(services, slack, report=report, lease_seconds=1)
    assert_exactly_one_each(slack, user_ids)
    assert len(resumed.in_doubt) == 1, "the DM confirmed just before the crash is in doubt, not resent"
    assert len(resumed.sent) == len(ELIGIBLE_IN_SLACK) - delivered
    assert len(resumed.skipped_already_sent) == delivered - 1


def test_failed_dms_are_released_and_sent_by_the_next_run(
    services: Services, slack: SlackEmulator, user_ids: dict[str, str], report: FleetReport
) -> None:
    posts = itertools.count(1)

    class BreakingClient(WebClient):
        """Slack starts refusing every DM after the 50th."""

        def chat_postMessage(self, **kwargs: Any) -> Any:
            response = super().chat_postMessage(**kwargs)
            if next(posts) == 50:
                slack.fail("chat.postMessage", "fatal_error", times=None)
            return response

    first = run_remind(
        services, slack, BreakingClient(token=BOT_TOKEN, base_url=slack.api_url), report=report
    )
    assert len(first.sent) >= 50 and first.failed
    assert set(first.failed.values()) == {"Slack answered fatal_error"}
    slack.reset_faults()
    second = run_remind(services, slack, report=report)
    assert sorted(second.sent) == sorted(first.failed)
    assert_exactly_one_each(slack, user_ids)


def test_two_concurrent_runs_send_each_dm_once(
    slack: SlackEmulator,
    databricks: DatabricksEmulator,
    redis_url: str,
    user_ids: dict[str, str],
    report: FleetReport,
) -> None:
    slack.rate_limit("chat.postMessage", every=9, retry_after=1)
    replicas = [make_services(slack, databricks, redis_url) for _ in range(2)]  # own connections each
    results: list[ReminderResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def replica(svc: Services) -> None:
        try:
            start.wait()
            results.append(run_remind(svc, slack, report=report))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(svc,)) for svc in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert_exactly_one_each(slack, user_ids)
    a, b = results
    assert not set(a.sent) & set(b.sent)
    assert sorted(a.sent + b.sent) == sorted(ELIGIBLE_IN_SLACK)
    assert not (a.failed or b.failed or a.in_progress_elsewhere or b.in_progress_elsewhere)


def test_dry_run_sends_nothing_and_marks_nothing(
    services: Services, slack: SlackEmulator, report: FleetReport
) -> None:
    result = run_remind(services, slack, report=report, dry_run=True)
    assert {r.email for r in result.planned} == ELIGIBLE_IN_SLACK
    assert all(r.user_id for r in result.planned)
    assert result.not_in_slack == NOT_IN_SLACK
    assert slack.calls("chat.postMessage") == []
    assert services.redis is not None and list(services.redis.scan_iter("patbot:remind:*")) == []


def test_owner_directory_walks_users_list_once_a_day(
    services: Services, slack: SlackEmulator, user_ids: dict[str, str]
) -> None:
    assert services.redis is not None
    wanted = [email(1), email(5), email(MIXED_CASE), "ghost1@example.com", "bystander@example.com"]
    found, missing = SlackOwners(client_for(slack), services.redis).resolve(wanted)
    assert found == {
        email(1): user_ids[email(1)],
        email(MIXED_CASE): user_ids[email(MIXED_CASE)],
        "bystander@example.com": found["bystander@example.com"],
    }
    assert missing == ["ghost1@example.com", email(5)], "deactivated and unknown people are not in Slack"
    assert len(slack.calls("users.list")) == 2  # 203 members, 200 a page
    assert len(slack.calls("users.lookupByEmail")) == 2  # only the misses
    assert services.redis.ttl(SlackOwners.CACHE_KEY) > 23 * 3600

    again = SlackOwners(client_for(slack), services.redis).resolve(wanted)
    assert again == (found, missing)
    assert len(slack.calls("users.list")) == 2 and len(slack.calls("users.lookupByEmail")) == 2


def test_ledger_state_machine_on_real_redis(redis_url: str) -> None:
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    wall = [1_000_000.0]
    a = ReminderLedger(store, WEEK, run_id="a", lease_seconds=10, wall=lambda: wall[0])
    b = ReminderLedger(store, WEEK, run_id="b", lease_seconds=10, wall=lambda: wall[0])
    assert a.claim("x@example.com") is Claim.CLAIMED
    assert a.claim("x@example.com") is Claim.CLAIMED, "a retried claim is the same claim"
    assert b.claim("x@example.com") is Claim.HELD
    wall[0] += 11  # a died before calling Slack: its pending claim is taken over
    assert b.claim("x@example.com") is Claim.CLAIMED
    assert not a.begin_send("x@example.com"), "a lost the owner"
    assert b.begin_send("x@example.com")
    wall[0] += 11  # b died while Slack was answering
    assert a.claim("x@example.com") is Claim.IN_DOUBT
    assert a.peek("x@example.com") is Claim.IN_DOUBT

    assert a.claim("y@example.com") is Claim.CLAIMED and a.begin_send("y@example.com")
    assert a.back_off("y@example.com", 30)  # 429: not delivered; leased past the wait
    wall[0] += 35
    assert b.claim("y@example.com") is Claim.HELD
    a.release("y@example.com")
    assert b.claim("y@example.com") is Claim.CLAIMED and b.begin_send("y@example.com")
    b.mark_sent("y@example.com")
    assert a.claim("y@example.com") is Claim.SENT and a.peek("y@example.com") is Claim.SENT
    a.release("y@example.com")
    assert a.peek("y@example.com") is Claim.SENT, "a sent marker is never released"
    assert store.ttl(a.key("y@example.com")) > 7 * 24 * 3600


def test_pacer_spaces_calls_and_backs_off() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = RatePacer(60, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert now[0] == pytest.approx(4.0)
    pacer.rate_limited(10)
    pacer.wait()
    assert now[0] == pytest.approx(14.0)
    assert pacer.per_minute == pytest.approx(48)
    for _ in range(20):
        pacer.succeeded()
    assert pacer.per_minute == pytest.approx(60)


def test_plan_groups_tokens_by_owner(report: FleetReport) -> None:
    reminders, principals = plan_reminders(report, WEEK)
    by_email = {r.email: r for r in reminders}
    assert set(by_email) == ELIGIBLE_IN_SLACK | set(NOT_IN_SLACK)
    assert len(by_email[email(3)].tokens) == 2 and len(by_email[email(1)].tokens) == 1
    assert by_email[email(1)].other_flagged == 0
    assert len(principals) == 2


# --------------------------------------------------------------------------- summary


def admin_posts(slack: SlackEmulator) -> list[Any]:
    return [m for m in slack.messages_to(ADMIN_CHANNEL) if m.blocks]


def test_summary_posts_once_with_csv_and_week_over_week_change(
    services: Services, slack: SlackEmulator, databricks: DatabricksEmulator
) -> None:
    last_week = NOW - timedelta(days=7)
    first = summary(
        services, client_for(slack), summary_message, SummaryOptions(now=last_week, sleep=slack.sleep)
    )
    assert first.posted and first.week == iso_week(last_week)

    with databricks.lock:  # three more non-expiring tokens this week
        ws = databricks.workspace("alpha")
        owner = next(p for p in ws.principals if p.user_name == email(4))
        ws.tokens += [_token(ws, owner, "forever", 10_000 + n) for n in range(3)]

    result = summary(services, client_for(slack), summary_message, SummaryOptions(sleep=slack.sleep))
    assert result.posted and result.week == WEEK
    posts = admin_posts(slack)
    assert len(posts) == 2
    text = "\n".join(str(b.get("text", {}).get("text", "")) for b in posts[-1].blocks if "text" in b)
    non_expiring = result.summary.totals[Finding.NON_EXPIRING]
    assert f"never expires: *{non_expiring}* (+3)" in text
    assert "Owners not found in Slack (7)" in text and "ghost1@example.com" in text and email(5) in text
    assert "gamma" in text and "could not be read" in text
    assert "Worst owners" in text

    csv_upload, png_upload = [u for u in slack.uploads if u.thread_ts == result.ts]
    assert csv_upload.channels == [ADMIN_CHANNEL] and csv_upload.completed
    lines = (csv_upload.content or b"").decode().splitlines()
    assert lines[0].startswith("workspace,token_id,owner")
    assert len(lines) == 1 + result.summary.token_count + 1  # header, tokens, the unreadable gamma
    assert (png_upload.content or b"").startswith(b"\x89PNG")
    assert result.attached == [f"patbot-tokens-{WEEK}.csv", f"patbot-findings-{WEEK}.png"]


def test_weekly_job_runs_once_per_week(
    services: Services, slack: SlackEmulator, user_ids: dict[str, str]
) -> None:
    reminders, posted = run_weekly(
        services,
        client_for(slack),
        render_dm=reminder_message,
        render_summary=summary_message,
        options=RemindOptions(sleep=slack.sleep, clock=slack.now),
    )
    assert len(reminders.sent) == len(ELIGIBLE_IN_SLACK) and posted.posted
    text = str(admin_posts(slack)[0].blocks)
    assert f"{len(ELIGIBLE_IN_SLACK)} reminder DM(s) sent" in text

    reminders, posted = run_weekly(
        services,
        client_for(slack),
        render_dm=reminder_message,
        render_summary=summary_message,
        options=RemindOptions(sleep=slack.sleep, clock=slack.now),
    )
    assert reminders.sent == [] and posted.already_posted and not posted.posted

    job = weekly_job(
        services,
        client_for(slack),
        render_dm=reminder_message,
        render_summary=summary_message,
        options=RemindOptions(sleep=slack.sleep, clock=slack.now),
    )
    job()  # what the scheduler calls
    assert len(admin_posts(slack)) == 1
    assert_exactly_one_each(slack, user_ids)


# --------------------------------------------------------------------------- CLI and scheduler


def test_cli_dry_run_and_one_line_errors(
    services: Services, slack: SlackEmulator, databricks: DatabricksEmulator, redis_url: str
) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run_weekly_command(
        parts_of(services), argparse.Namespace(command="remind", dry_run=True), out, err
    )
    assert code == 2, "gamma could not be read"
    assert f"would DM {email(1)} (U" in out.getvalue() and "in alpha [long_lived, stale]" in out.getvalue()
    assert err.getvalue().startswith("patbot: could not read gamma: ") and err.getvalue().count("\n") == 1
    assert slack.calls("chat.postMessage") == []

    out, err = io.StringIO(), io.StringIO()
    code = run_weekly_command(
        parts_of(services), argparse.Namespace(command="summary", dry_run=True), out, err
    )
    assert "Weekly token report" in out.getvalue() and "<!date" not in out.getvalue()
    assert admin_posts(slack) == []

    no_token = make_services(slack, databricks, redis_url, slack_bot_token=None)
    err = io.StringIO()
    assert (
        run_weekly_command(parts_of(no_token), argparse.Namespace(command="remind", dry_run=False), out, err)
        == 2
    )
    assert err.getvalue() == "patbot: SLACK_BOT_TOKEN is required but not set\n"

    no_retry = Retry(NoBackoff(), 0)
    dead_redis = services.replace(redis=redis.Redis(port=1, socket_connect_timeout=0.2, retry=no_retry))
    err = io.StringIO()
    assert (
        run_weekly_command(
            parts_of(dead_redis), argparse.Namespace(command="remind", dry_run=False), out, err
        )
        == 2
    )
    assert err.getvalue().startswith("patbot: cannot reach Redis") and err.getvalue().count("\n") == 1


def test_scheduler_follows_the_cron_and_can_be_switched_off(redis_url: str) -> None:
    base: dict[str, Any] = {"databricks_host": "https://placeholder.invalid"}
    runs = WeekRuns(redis.Redis.from_url(redis_url, decode_responses=True))
    off = Settings(_env_file=None, scheduler="off", **base)  # type: ignore[call-arg]
    assert start_scheduler(off, lambda: True, runs) is None

    on = Settings(  # type: ignore[call-arg]
        _env_file=None, scheduler="on", reminder_cron="30 8 * * tue", timezone="Europe/Paris", **base
    )
    scheduler = start_scheduler(on, lambda: True, runs)
    assert scheduler is not None
    try:
        when = scheduler.schedule.next_after(NOW)
        assert (when.weekday(), when.hour, when.minute) == (1, 8, 30)
        assert str(when.tzinfo) == "Europe/Paris"
    finally:
        assert scheduler.stop(5)


def scheduled_weekly(services: Services, slack: SlackEmulator) -> WeeklyScheduler:
    """A scheduler of the real weekly job whose scheduled time (every minute) has just passed."""
    job = weekly_job(
        services,
        client_for(slack),
        render_dm=reminder_message,
        render_summary=summary_message,
        options=RemindOptions(sleep=slack.sleep, clock=slack.now),
    )
    assert services.redis is not None
    return WeeklyScheduler(CronSchedule("* * * * *"), job, WeekRuns(services.redis), clock=lambda: NOW)


def test_a_restart_after_the_scheduled_time_runs_the_weekly_job_once(
    slack: SlackEmulator, databricks: DatabricksEmulator, redis_url: str, user_ids: dict[str, str]
) -> None:
    first = make_services(slack, databricks, redis_url)
    assert scheduled_weekly(first, slack).catch_up(), "patbot was down at the scheduled time"
    assert len(admin_posts(slack)) == 1
    assert_exactly_one_each(slack, user_ids)
    assert not WeekRuns(first.redis).done(WEEK), "gamma could not be read: the week stays open"  # type: ignore[arg-type]

    databricks.clear_faults("gamma")
    restarted = make_services(slack, databricks, redis_url)
    assert not scheduled_weekly(restarted, slack).catch_up(), "it ran: not a missed week"
    assert scheduled_weekly(restarted, slack).run_once(), "the next scheduled time retries the week"
    assert WeekRuns(restarted.redis).done(WEEK)  # type: ignore[arg-type]

    again = make_services(slack, databricks, redis_url)
    assert not scheduled_weekly(again, slack).catch_up(), "this week's run is done"
    assert len(admin_posts(slack)) == 1
    assert_exactly_one_each(slack, user_ids)


def test_two_replicas_starting_after_the_scheduled_time_run_the_weekly_job_once(
    slack: SlackEmulator, databricks: DatabricksEmulator, redis_url: str, user_ids: dict[str, str]
) -> None:
    databricks.clear_faults("gamma")
    replicas = [scheduled_weekly(make_services(slack, databricks, redis_url), slack) for _ in range(2)]
    ran: list[bool] = []
    barrier = threading.Barrier(2)

    def start(replica: WeeklyScheduler) -> None:
        barrier.wait()
        ran.append(replica.catch_up())

    threads = [threading.Thread(target=start, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(ran) == [False, True]
    assert len(admin_posts(slack)) == 1
    assert_exactly_one_each(slack, user_ids)


def test_remind_refuses_the_embedded_store_except_for_a_dry_run(
    services: Services, slack: SlackEmulator
) -> None:
    import argparse
    import io

    embedded = services.replace(embedded_store=True)
    err = io.StringIO()
    code = run_weekly_command(
        parts_of(embedded, client_for(slack)),
        argparse.Namespace(command="remind", dry_run=False),
        io.StringIO(),
        err,
    )
    assert code == 2 and err.getvalue().startswith("patbot: REDIS_URL is required for patbot remind")
    assert slack.calls("chat.postMessage") == []
    out = io.StringIO()
    code = run_weekly_command(
        parts_of(embedded, client_for(slack)),
        argparse.Namespace(command="remind", dry_run=True),
        out,
        io.StringIO(),
    )
    assert "dry run" in out.getvalue() and slack.calls("chat.postMessage") == []


def test_summary_command_posts_once_a_week_unless_forced(services: Services, slack: SlackEmulator) -> None:
    def run(*flags: str) -> tuple[int, str]:
        out = io.StringIO()
        args = argparse.Namespace(command="summary", dry_run=False, force="--force" in flags)
        code = run_weekly_command(parts_of(services, client_for(slack)), args, out, io.StringIO())
        return code, out.getvalue()

    code, out = run()
    assert f"Summary for {WEEK} posted to {ADMIN_CHANNEL}" in out and len(admin_posts(slack)) == 1
    assert code == 2, "gamma could not be read"
    code, out = run()
    assert f"The summary for {WEEK} was already posted" in out and len(admin_posts(slack)) == 1
    _, out = run("--force")
    assert f"Summary for {WEEK} posted" in out and len(admin_posts(slack)) == 2
    _, out = run()
    assert "already posted" in out and len(admin_posts(slack)) == 2

    err = io.StringIO()
    embedded = services.replace(embedded_store=True)
    args = argparse.Namespace(command="summary", dry_run=False, force=False)
    assert run_weekly_command(parts_of(embedded, client_for(slack)), args, io.StringIO(), err) == 2
    assert err.getvalue().startswith("patbot: REDIS_URL is required for patbot summary")
