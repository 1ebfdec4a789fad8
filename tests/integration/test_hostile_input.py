"""Hostile input: fuzzed /pat texts and forged button payloads never give a 5xx, a traceback or an action."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sandbox.slack_signing import block_action_body, slash_command_body
from handlers.approval_blocks import ACTION_APPROVE, ACTION_CONFIRM, ACTION_DENY
from handlers.blocks import ACTION_REVOKE_OWN
from tests.fixtures.emulators import ADMIN_CHANNEL, Bot, People

pytestmark = pytest.mark.integration

WRITES = ("DELETE", "POST", "PATCH", "PUT")


def databricks_writes(bot: Bot) -> int:
    return sum(bot.databricks.count_requests(m) for m in WRITES)


def no_traceback_anywhere(bot: Bot) -> None:
    said = json.dumps([p.body for p in bot.slack.response_posts()]) + json.dumps(
        [c.args for c in bot.slack.calls()]
    )
    assert "Traceback" not in said and 'File "' not in said


command_texts = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.sampled_from(
            [
                "audit",
                "revoke",
                "create",
                "rotate",
                "policy",
                "help",
                "all",
                "max-lifetime",
                "<@U1>",
                "<!channel>",
                "workspace=",
                "30d",
                "-1h",
                "99999999d",
                "'",
                '"',
                "\\",
                "\x00",
                "é",
                "📛",
                "0" * 8,
                "<mailto:x@y|x@y>",
                "<https://a|b>",
                "&lt;",
                "%00",
                "${jndi:x}",
            ]
        ),
        max_size=6,
    ).map(" ".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=command_texts)
def test_fuzzed_commands_never_fail_or_act(bot: Bot, people: People, text: str) -> None:
    key = f"fuzz-{time.monotonic_ns()}"
    body = slash_command_body("/pat", text, people.bob, "C1", bot.slack.response_url(key))
    status, _ = bot.post(body)
    assert status == 200
    assert databricks_writes(bot) == 0
    assert bot.slack.messages_to(ADMIN_CHANNEL) == [] or "revoke" in text or "create" in text


def test_fuzzed_commands_left_no_traceback(bot: Bot, people: People) -> None:
    for text in [
        "revoke \x00\x00\x00\x00\x00\x00\x00\x00",
        "audit <@U1|" + "x" * 5000 + ">",
        "create 'unbalanced",
        "policy max-lifetime 1e9",
        "audit " + "a" * 10000,
    ]:
        bot.command(people.approver, text)
        replies = bot.responses()
        assert replies, text
    no_traceback_anywhere(bot)
    assert databricks_writes(bot) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from(
        [ACTION_APPROVE, ACTION_DENY, ACTION_CONFIRM, ACTION_REVOKE_OWN, "unknown_action"]
    ),
    value=st.one_of(st.text(max_size=200), st.just("a" * 10), st.just("../../etc"), st.just("x" * 20000)),
)
def test_forged_button_payloads(bot: Bot, people: People, action: str, value: str) -> None:
    body = block_action_body(
        people.approver,
        action,
        value,
        bot.slack.response_url("forged"),
        channel_id=ADMIN_CHANNEL,
        message_ts="1.1",
    )
    status, _ = bot.post(body)
    assert status in (200, 401)
    assert bot.databricks.count_requests("DELETE") == 0


@pytest.mark.parametrize(
    "body",
    [
        "payload=not-json",
        "payload=" + "%7B" * 50,
        urlencode({"payload": json.dumps({"type": "block_actions"})}),
        urlencode({"payload": json.dumps({"type": "block_actions", "actions": [{}], "user": {}})}),
        urlencode(
            {"payload": json.dumps({"type": "view_submission", "view": {"callback_id": "pat_confirm_modal"}})}
        ),
        json.dumps({"type": "event_callback", "event": {"type": "app_home_opened"}}),
        json.dumps({"type": "url_verification", "challenge": "abc"}),
        "",
        "command=/pat",
        "x" * 100_000,
    ],
    ids=lambda b: b[:30],
)
def test_malformed_bodies(bot: Bot, body: str) -> None:
    status, _ = bot.post(body)
    assert status < 500
    time.sleep(0.2)
    assert databricks_writes(bot) == 0
    status, _ = bot.get("/healthz")
    assert status == 200


def test_replayed_approval_is_refused(bot: Bot, people: People) -> None:
    body = block_action_body(
        people.approver,
        ACTION_APPROVE,
        "abcdefghij",
        bot.slack.response_url("r"),
        channel_id=ADMIN_CHANNEL,
        message_ts="1.1",
    )
    status, _ = bot.post(body, timestamp=int(time.time()) - 301)
    assert status == 401
    assert bot.slack.response_posts("r") == []
