"""API scopes end to end through Slack: scoped creates, `/pat scope`, rotation keeping scopes, and the weekly
DM's "Narrow to …" button. Signed requests over HTTP, the Databricks and Slack emulators."""

from __future__ import annotations

import json
import re

import pytest
from slack_sdk import WebClient

from bot.sandbox.databricks_emulator import DatabricksEmulator, EmulatedToken
from bot.weekly import remind
from handlers.approval_blocks import ACTION_CONFIRM
from handlers.blocks import ACTION_NARROW_OWN
from handlers.weekly_blocks import reminder_message
from handlers.weekly_chat import SlackChat
from tests.fixtures.emulators import ADMIN_CHANNEL, BOT_TOKEN, Bot, People, wait_until
from tests.integration.test_slack_provisioning import OBO, approve_latest, ask, sp_tokens
from tests.integration.test_slack_revoke import button_value, text_of

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens/"
COMPLETED = "AUTOSCOPE_STATE_COMPLETED"


@pytest.fixture
def pbot(bot_factory) -> Bot:
    return bot_factory(secret_scope="patbot")


def patches(bot: Bot) -> list[dict]:
    return [r.body for r in bot.databricks.requests if r.method == "PATCH" and r.path.startswith(TOKENS)]


def obo_bodies(bot: Bot) -> list[dict]:
    return [r.body for r in bot.databricks.requests if r.method == "POST" and r.path == OBO]


def token_named(databricks: DatabricksEmulator, comment: str, workspace: str = "prod") -> EmulatedToken:
    with databricks.lock:
        return next(t for t in databricks.workspace(workspace).tokens if t.comment == comment)


def seen_using(databricks: DatabricksEmulator, comment: str, used: list[str]) -> EmulatedToken:
    """Let Databricks have inferred what the token uses."""
    with databricks.lock:
        token = next(t for t in databricks.workspace("prod").tokens if t.comment == comment)
        token.autoscope_state, token.inferred_scopes = COMPLETED, list(used)
        return token


def confirm(bot: Bot, user: str, reply: dict) -> dict:
    request_id = button_value(reply, ACTION_CONFIRM)
    bot.action(user, ACTION_CONFIRM, request_id, channel_id="CGENERAL01", message_ts="1.1", is_ephemeral=True)
    (done,) = bot.responses()
    return done


# --------------------------------------------------------------------------- scoped create


def test_a_scoped_create_sends_exactly_those_scopes(pbot: Bot, people: People) -> None:
    reply = ask(pbot, people.bob, "create etl-pipeline 30d workspace=prod scopes=sql,jobs:read nightly load")
    assert "sent to the approvers" in text_of(reply)
    assert "sql, jobs (read)" in text_of(reply)
    admin = json.dumps(pbot.slack.messages_to(ADMIN_CHANNEL)[-1].blocks, ensure_ascii=False)
    assert "sql, jobs (read)" in admin, "the approvers see the scopes in plain words"
    approve_latest(pbot, people.approver)
    (body,) = obo_bodies(pbot)
    assert body["scopes"] == ["sql", "jobs:read"] and "autoscope_enabled" not in body
    (new,) = [t for t in sp_tokens(pbot.databricks, "prod", "etl-pipeline") if t.token_value]
    assert new.scopes == ["sql", "jobs:read"] and new.comment.startswith("nightly load")


def test_an_autoscoped_create_asks_databricks_to_autoscope(pbot: Bot, people: People) -> None:
    reply = ask(pbot, people.bob, "create ml-serving 7d workspace=prod autoscope")
    assert "autoscope" in text_of(reply)
    approve_latest(pbot, people.approver)
    (body,) = obo_bodies(pbot)
    assert body["autoscope_enabled"] is True and "scopes" not in body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("create etl-pipeline 30d workspace=prod scopes=sql,jbos", "Unknown API scope `jbos`"),
        ("create etl-pipeline 30d workspace=prod scopes=jobs:write", "Unknown scope modifier `write`"),
        (
            "create etl-pipeline 30d workspace=prod nightly",
            "add `scopes=sql,jobs:read` (the APIs the token needs) or `autoscope`",
        ),
    ],
)
def test_unknown_scopes_and_scopeless_creates_are_refused_before_any_request(
    pbot: Bot, people: People, text: str, expected: str
) -> None:
    assert expected in text_of(ask(pbot, people.bob, text))
    assert pbot.slack.messages_to(ADMIN_CHANNEL) == []
    assert pbot.services.approvals is not None and pbot.services.approvals.pending() == []
    assert pbot.databricks.count_requests() == 0, "refused before asking Databricks anything"


def test_a_full_access_create_is_allowed_when_scopes_are_not_required(bot_factory, people: People) -> None:
    bot = bot_factory(secret_scope="patbot", require_scopes=False)
    assert "sent to the approvers" in text_of(ask(bot, people.bob, "create etl-pipeline 30d workspace=prod"))


# --------------------------------------------------------------------------- /pat scope


def test_the_owner_narrows_to_the_suggested_scopes_with_one_patch(bot: Bot, people: People) -> None:
    token = seen_using(bot.databricks, "dbt prod", ["sql", "unity-catalog:read"])
    reply = ask(bot, people.alice, f"scope {token.token_id[:12]} suggested")
    text = text_of(reply)
    assert (
        reply["response_type"] == "ephemeral"
        and "full access" in text
        and "sql, unity-catalog (read)" in text
    )
    assert bot.slack.messages_to(ADMIN_CHANNEL) == [], "narrowing your own token needs no approver"
    assert patches(bot) == []
    done = confirm(bot, people.alice, reply)
    assert "full access → sql, unity-catalog (read)" in text_of(done)
    assert patches(bot) == [
        {
            "token": {"token_id": token.token_id, "scopes": ["sql", "unity-catalog:read"]},
            "update_mask": "scopes",
        }
    ]
    assert token_named(bot.databricks, "dbt prod").scopes == ["sql", "unity-catalog:read"]
    bot.action(
        people.alice,
        ACTION_CONFIRM,
        button_value(reply, ACTION_CONFIRM),
        channel_id="CGENERAL01",
        message_ts="1.1",
        is_ephemeral=True,
    )
    (again,) = bot.responses()
    assert "already" in text_of(again) and len(patches(bot)) == 1, "a second click never patches again"


def test_someone_else_narrowing_a_token_waits_for_an_approver(bot: Bot, people: People) -> None:
    token = seen_using(bot.databricks, "dbt prod", ["sql"])
    reply = ask(bot, people.bob, f"scope {token.token_id[:12]} suggested")
    assert "sent to the approvers" in text_of(reply) and "full access" in text_of(reply)
    assert patches(bot) == []
    text = approve_latest(bot, people.approver)
    assert "full access → sql" in text
    assert [p["token"]["scopes"] for p in patches(bot)] == [["sql"]]


def test_a_widening_waits_for_an_approver_even_for_the_owner(bot: Bot, people: People) -> None:
    token = token_named(bot.databricks, "Power BI refresh")
    assert token.scopes == ["sql"]
    reply = ask(bot, people.bob, f"scope {token.token_id[:12]} sql,jobs")
    assert "sent to the approvers" in text_of(reply)
    admin = json.dumps(bot.slack.messages_to(ADMIN_CHANNEL)[-1].blocks, ensure_ascii=False)
    assert "sql → sql, jobs" in admin and "*Wider* than before" in admin
    assert patches(bot) == []
    approve_latest(bot, people.approver)
    assert [p["token"]["scopes"] for p in patches(bot)] == [["sql", "jobs"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scope {id} suggested", "has not inferred"),
        ("scope {id} sql,nope", "Unknown API scope `nope`"),
        ("scope {id} sql", "already has exactly"),
        ("scope {id}", "Usage: `/pat scope"),
        ("scope ffffffffffff sql", "No token"),
    ],
)
def test_scope_refusals(bot: Bot, people: People, text: str, expected: str) -> None:
    token = token_named(bot.databricks, "Power BI refresh")
    assert expected in text_of(ask(bot, people.bob, text.format(id=token.token_id[:12])))
    assert patches(bot) == [] and bot.slack.messages_to(ADMIN_CHANNEL) == []


# --------------------------------------------------------------------------- rotation


def test_rotation_keeps_the_scopes_and_autoscope_with_one_marker(pbot: Bot, people: People) -> None:
    old = token_named(pbot.databricks, "nightly ETL")
    with pbot.databricks.lock:
        old.comment = "nightly ETL (rotated 2024-01-02) [patbot:AbCdEfGh12]"
        old.autoscope_state = COMPLETED
    assert old.scopes == ["sql", "unity-catalog"]
    reply = ask(pbot, people.bob, f"rotate {old.token_id[:12]}")
    assert "sql, unity-catalog" in text_of(reply)
    approve_latest(pbot, people.approver)
    (body,) = obo_bodies(pbot)
    assert body["scopes"] == ["sql", "unity-catalog"] and body["autoscope_enabled"] is True
    (new,) = [t for t in sp_tokens(pbot.databricks, "prod", "etl-pipeline") if t.token_value]
    assert new.scopes == ["sql", "unity-catalog"]
    assert len(re.findall(r"\[patbot:", new.comment)) == 1 and new.comment.count("(rotated") == 1


def test_rotating_a_full_access_token_keeps_it_full_access_without_autoscope(
    pbot: Bot, people: People
) -> None:
    old = token_named(pbot.databricks, "nightly ETL (old)")
    assert old.scopes == [] and old.autoscope_state is None
    ask(pbot, people.bob, f"rotate {old.token_id[:12]}")
    approve_latest(pbot, people.approver)
    (body,) = obo_bodies(pbot)
    assert "scopes" not in body and body.get("autoscope_enabled") in (None, False)


# --------------------------------------------------------------------------- the weekly DM


def test_the_narrow_button_in_a_reminder_dm_makes_one_patch(bot: Bot, people: People) -> None:
    token = seen_using(bot.databricks, "dbt prod", ["sql"])
    client = SlackChat(WebClient(token=BOT_TOKEN, base_url=bot.slack.api_url))
    result = remind(bot.services, client, reminder_message)
    assert "alice@example.com" in result.sent
    (dm,) = wait_until(lambda: bot.slack.messages_to(people.alice))
    value = button_value(
        {"blocks": [{"elements": [b["accessory"]]} for b in dm.blocks if "accessory" in b]}, ACTION_NARROW_OWN
    )
    assert value == token.token_id
    bot.action(people.alice, ACTION_NARROW_OWN, value, channel_id=dm.channel, message_ts=dm.ts)
    (reply,) = bot.responses()
    assert "full access" in text_of(reply) and "sql" in text_of(reply) and patches(bot) == []
    done = confirm(bot, people.alice, reply)
    assert "full access → sql" in text_of(done)
    assert [p["token"]["scopes"] for p in patches(bot)] == [["sql"]]
