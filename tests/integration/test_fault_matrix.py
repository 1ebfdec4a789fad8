"""Every external call's failures: a clear message, nothing lost or done twice, still serving, counted."""

from __future__ import annotations

import json

import pytest

from bot.approvals import RequestState
from handlers.approval_blocks import ACTION_APPROVE
from tests.fixtures.emulators import ADMIN_CHANNEL, Bot, People, wait_until
from tests.integration.test_slack_revoke import click, request_for_others, text_of, token_of

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens"


def metric(bot: Bot, name: str) -> float:
    _, text = bot.get("/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "permission denied"),
        (403, "permission denied"),
        (404, "already gone"),
        (429, "rate limited"),
        (500, "NOT revoked"),
        (503, "NOT revoked"),
    ],
)
def test_revoke_faults_delete_at_most_once(bot: Bot, people: People, status: int, expected: str) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.databricks.fail("prod", f"{TOKENS}/{token_id}", status, method="DELETE", retry_after=1)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    text = json.dumps(updated[0].blocks)
    assert "Failed" in text and expected in text
    assert bot.databricks.count_requests("DELETE", TOKENS) == 1, "one DELETE, never retried"
    assert bot.services.approvals is not None
    assert bot.services.approvals.get(request_id).outcome == "failed"
    assert bot.get("/healthz")[0] == 200


def test_revoke_with_workspace_unreachable(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.databricks.take_down("prod")
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits], timeout=30)
    assert "NOT revoked" in json.dumps(updated[0].blocks)


def test_create_is_never_retried(bot_factory, people: People) -> None:
    bot = bot_factory(secret_scope="patbot")
    bot.command(people.bob, "create ml-serving 7d workspace=prod")
    bot.responses()
    bot.databricks.fail("prod", "/api/2.0/token-management/on-behalf-of/tokens", 503, retry_after=1)
    message = bot.slack.messages_to(ADMIN_CHANNEL)[0]
    [actions] = [b for b in message.blocks if b["type"] == "actions"]
    request_id = actions["elements"][0]["value"]
    click(bot, people.approver, ACTION_APPROVE, request_id)
    wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert bot.databricks.count_requests("POST", "/api/2.0/token-management/on-behalf-of/tokens") == 1


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
