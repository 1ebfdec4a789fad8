"""Every external call's failures: a clear message, nothing lost or done twice, still serving, counted."""

from __future__ import annotations

import json

import pytest

from bot.approvals import RequestState
from bot.write_once import RATE_LIMITED_ATTEMPTS
from handlers.approval_blocks import ACTION_APPROVE
from tests.fixtures.emulators import ADMIN_CHANNEL, Bot, People, wait_until
from tests.integration.test_slack_revoke import click, request_for_others, text_of, token_of

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens"
OBO = "/api/2.0/token-management/on-behalf-of/tokens"


def metric(bot: Bot, name: str) -> float:
    _, text = bot.get("/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (401, None, "permission denied"),
        (403, None, "permission denied"),
        (404, None, "already gone"),
        (500, None, "NOT revoked"),
        (503, 1, "NOT revoked"),
        (503, 0, "NOT revoked"),
        (503, None, "NOT revoked"),
        (502, 0, "NOT revoked"),
        (504, 0, "NOT revoked"),
    ],
)
def test_revoke_faults_delete_at_most_once(
    bot: Bot, people: People, status: int, retry_after: int | None, expected: str
) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.databricks.fail("prod", f"{TOKENS}/{token_id}", status, method="DELETE", retry_after=retry_after)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    text = json.dumps(updated[0].blocks)
    assert "Failed" in text and expected in text
    assert bot.databricks.count_requests("DELETE", TOKENS) == 1, "one DELETE, never retried"
    assert bot.services.approvals is not None
    assert bot.services.approvals.get(request_id).outcome == "failed"
    assert bot.get("/healthz")[0] == 200


def test_revoke_rate_limited_throughout_is_tried_a_bounded_number_of_times(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.databricks.fail("prod", f"{TOKENS}/{token_id}", 429, method="DELETE", retry_after=0)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert "rate limited" in json.dumps(updated[0].blocks)
    calls = [r.status for r in bot.databricks.requests if r.method == "DELETE"]
    assert calls == [429] * RATE_LIMITED_ATTEMPTS, "429 means not processed: tried again, never acted on"


@pytest.mark.parametrize("retry_after", [0, None, 1])
def test_revoke_whose_answer_is_lost_after_deleting_says_revoked(
    bot: Bot, people: People, retry_after: int | None
) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.databricks.lose_answer("prod", "DELETE", f"{TOKENS}/{token_id}", status=503, retry_after=retry_after)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    text = json.dumps(updated[0].blocks)
    assert "Revoked" in text and "read back: the token is gone" in text
    assert bot.databricks.count_requests("DELETE", TOKENS) == 1


def test_revoke_with_workspace_unreachable(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.databricks.take_down("prod")
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits], timeout=30)
    assert "NOT revoked" in json.dumps(updated[0].blocks)


@pytest.mark.parametrize("acted", [True, False])
@pytest.mark.parametrize("retry_after", [0, None, 1])
def test_create_is_never_retried(bot_factory, people: People, retry_after: int | None, acted: bool) -> None:
    bot = bot_factory(secret_scope="patbot")
    bot.command(people.bob, "create ml-serving 7d workspace=prod scopes=sql")
    bot.responses()
    bot.databricks.lose_answer("prod", "POST", OBO, status=503, retry_after=retry_after, act=acted)
    message = bot.slack.messages_to(ADMIN_CHANNEL)[0]
    [actions] = [b for b in message.blocks if b["type"] == "actions"]
    request_id = actions["elements"][0]["value"]
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    text = json.dumps(updated[0].blocks)
    assert bot.databricks.count_requests("POST", OBO) == 1
    if acted:
        assert "WAS created" in text and "revoked again because its value could not be stored" in text
        assert bot.databricks.count_requests("DELETE", TOKENS) == 1
    else:
        assert "no token created" in text and "read back: no token was created" in text
        assert bot.databricks.count_requests("DELETE", TOKENS) == 0


@pytest.mark.parametrize("acted", [True, False])
def test_policy_change_is_never_retried(bot: Bot, people: People, acted: bool) -> None:
    bot.command(people.approver, "policy max-lifetime 60 staging")
    bot.responses()
    bot.databricks.lose_answer("staging", "PATCH", "/api/2.0/workspace-conf", retry_after=0, act=acted)
    request_id = bot.slack.messages_to(ADMIN_CHANNEL)[0].blocks[1]["elements"][0]["value"]
    click(bot, people.approver2, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    text = json.dumps(updated[0].blocks)
    assert bot.databricks.count_requests("PATCH", "/api/2.0/workspace-conf") == 1
    assert ("read back: it is set" if acted else "NOT applied") in text


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_audit_faults_name_the_workspace_and_are_counted(bot_factory, people: People, status: int) -> None:
    bot = bot_factory()
    before = metric(bot, "patbot_databricks_errors_total")
    bot.databricks.fail("analytics", TOKENS, status, retry_after=1)
    bot.command(people.alice, "audit")
    (reply,) = bot.responses(timeout=30)
    text = text_of(reply)
    assert "Could not read these workspaces" in text and "analytics" in text
    assert "dbt prod" in text, "the other workspaces still answer"
    assert metric(bot, "patbot_databricks_errors_total") == before + 1


def test_slow_workspace_still_answers(bot: Bot, people: People) -> None:
    bot.databricks.set_latency("staging", 0.5)
    bot.command(people.alice, "audit")
    (reply,) = bot.responses(timeout=30)
    assert "staging tests" in text_of(reply)


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_auth"])
def test_admin_channel_failures_leave_nothing_pending(bot: Bot, people: People, error: str) -> None:
    bot.slack.fail("chat.postMessage", error=error, times=1)
    token_id = token_of(bot.databricks, "alice@example.com")
    bot.command(people.bob, f"revoke {token_id[:12]}")
    (reply,) = bot.responses()
    assert error in text_of(reply) and "Nothing was changed" in text_of(reply)
    assert bot.services.approvals is not None
    assert bot.services.approvals.pending() == []
    entries = bot.services.approvals.audit.entries()
    assert entries[-1].event == RequestState.CANCELLED
    assert metric(bot, "patbot_slack_api_errors_total") >= 1
    request_id = request_for_others(bot, people.bob, token_id)  # and it works again
    assert request_id


def test_user_not_found_in_slack(bot: Bot, people: People) -> None:
    bot.slack.fail("users.info", error="user_not_found", times=1)
    bot.command(people.alice, "audit")
    (reply,) = bot.responses()
    assert "could not look up" in text_of(reply) and "user_not_found" in text_of(reply)


def test_chat_update_rate_limited_is_retried(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.slack.rate_limit("chat.update", times=1, retry_after=1)
    click(bot, people.approver, ACTION_APPROVE, request_id, reply=False)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits], timeout=20)
    assert updated and "Revoked" in json.dumps(updated[0].blocks)
    assert len([c for c in bot.slack.calls("chat.update") if c.status == 429]) == 1


def test_slack_timeout_on_the_admin_post_leaves_nothing_pending(bot_factory, people: People) -> None:
    bot = bot_factory(slack_timeout_seconds=1)
    bot.slack.set_latency(3.0, method="chat.postMessage")
    token_id = token_of(bot.databricks, "alice@example.com")
    bot.command(people.bob, f"revoke {token_id[:12]}")
    (reply,) = bot.responses(timeout=30)
    assert "Something went wrong" not in text_of(reply)
    assert "Slack did not answer in time" in text_of(reply) and "Nothing was changed" in text_of(reply)
    assert bot.services.approvals is not None and bot.services.approvals.pending() == []
    assert metric(bot, "patbot_slack_api_errors_total") >= 1
    bot.slack.set_latency(0.0, method="chat.postMessage")
    assert request_for_others(bot, people.bob, token_id)


def test_slack_timeout_looking_up_the_user(bot_factory, people: People) -> None:
    bot = bot_factory(slack_timeout_seconds=1)
    bot.slack.set_latency(3.0, method="users.info")
    bot.command(people.alice, "audit")
    (reply,) = bot.responses(timeout=30)
    assert "Slack did not answer in time" in text_of(reply)
    assert metric(bot, "patbot_slack_api_errors_total") >= 1
    assert bot.get("/healthz")[0] == 200


def test_slack_timeout_updating_the_admin_message_still_records_the_outcome(
    bot_factory, people: People
) -> None:
    bot = bot_factory(slack_timeout_seconds=1)
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.slack.set_latency(3.0, method="chat.update")
    message = bot.slack.messages_to(ADMIN_CHANNEL)[0]
    bot.action(people.approver, ACTION_APPROVE, request_id, channel_id=ADMIN_CHANNEL, message_ts=message.ts)
    dms = wait_until(lambda: bot.slack.messages_to(people.bob), timeout=30)
    assert dms and "Revoked" in dms[0].text, "the requester is still told"
    assert bot.services.approvals is not None
    assert bot.services.approvals.get(request_id).outcome == "revoked"
    assert bot.databricks.count_requests("DELETE", TOKENS) == 1
