"""/pat help, /pat audit and App Home end to end: signed requests, real HTTP server, both emulators."""

from __future__ import annotations

import json
import time

import pytest
import redis

from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN
from bot.sandbox.slack_signing import slash_command_body
from tests.fixtures.emulators import SIGNING_SECRET, Bot, People, wait_until

pytestmark = pytest.mark.integration


def text_of(body: dict) -> str:
    return json.dumps(body.get("blocks", []), ensure_ascii=False) + body.get("text", "")


def test_help_is_ephemeral_and_unknown_subcommands_get_help(bot: Bot, people: People) -> None:
    status, _ = bot.command(people.alice, "")
    assert status == 200
    (reply,) = bot.responses()
    assert reply["response_type"] == "ephemeral"
    assert "/pat audit" in text_of(reply) and "/pat audit all" not in text_of(reply)
    bot.command(people.alice, "frobnicate")
    (reply,) = bot.responses()
    assert "I don't know `frobnicate`" in text_of(reply)


def test_help_shows_approver_commands_to_group_members(bot: Bot, people: People) -> None:
    bot.command(people.group_member, "help")
    (reply,) = bot.responses()
    assert "/pat audit all" in text_of(reply)


def test_own_audit_lists_only_my_tokens_with_findings(bot: Bot, people: People) -> None:
    bot.command(people.alice, "audit")
    (reply,) = bot.responses()
    text = text_of(reply)
    assert reply["response_type"] == "ephemeral"
    assert "alice@example.com" in text and "bob@example.com" not in text
    assert "never expires" in text and "<!date^" in text
    alice_ids = [
        t.token_id
        for ws in bot.databricks.names
        for t in bot.databricks.workspace(ws).tokens
        if t.created_by_username == "alice@example.com"
    ]
    assert all(f"`{tid[:12]}`" in text for tid in alice_ids)
    assert not any(tid in text for tid in alice_ids), "ids are shown as 12 characters"
    assert not bot.slack.uploads, "owners get no CSV"


def test_email_is_matched_case_insensitively(bot: Bot, people: People) -> None:
    bot.command(people.carol, "audit")
    (reply,) = bot.responses()
    assert "carol@example.com" in text_of(reply) and "terraform" in text_of(reply)


def test_user_without_email_gets_a_clear_message(bot: Bot, people: People) -> None:
    bot.command(people.no_email, "audit")
    (reply,) = bot.responses()
    assert "cannot see an e-mail address" in text_of(reply)


def test_user_without_databricks_identity(bot: Bot, people: People) -> None:
    bot.command(people.approver, "audit")
    (reply,) = bot.responses()
    assert "No Databricks user with the e-mail ann@example.com" in text_of(reply)


def test_fleet_views_are_for_approvers_only(bot: Bot, people: People) -> None:
    bot.command(people.alice, "audit all")
    (reply,) = bot.responses()
    assert "Only approvers can see the fleet" in text_of(reply)
    assert not bot.slack.uploads


def test_fleet_audit_sends_the_csv_to_the_approvers_dm(bot: Bot, people: People) -> None:
    bot.command(people.approver, "audit all")
    (reply,) = bot.responses()
    text = text_of(reply)
    assert "30" in text and "prod" in text and "staging" in text and "analytics" in text
    assert "never expires: *" in text
    uploads = wait_until(lambda: [u for u in bot.slack.uploads if u.completed])
    assert len(uploads) == 1
    upload = uploads[0]
    assert upload.channels == [bot.slack.dm_channel_of(people.approver)]
    csv_text = (upload.content or b"").decode()
    assert csv_text.startswith("workspace,token_id,owner") and csv_text.count("\n") == 31
    assert not bot.slack.ephemerals() and not bot.slack.messages_to(people.approver)[1:], "no other DMs"


@pytest.mark.parametrize("target", ["<@{bob}>", "<@{bob}|bob>", "bob@example.com"])
def test_audit_one_user(bot: Bot, people: People, target: str) -> None:
    bot.command(people.group_member, f"audit {target.format(bob=people.bob)}")
    (reply,) = bot.responses()
    text = text_of(reply)
    assert "bob@example.com" in text and "alice@example.com" not in text


def test_audit_one_workspace_by_name_and_unknown_workspace(bot: Bot, people: People) -> None:
    bot.command(people.approver, "audit staging")
    (reply,) = bot.responses()
    assert "Token audit: staging" in text_of(reply) and "prod" not in text_of(reply)
    bot.command(people.approver, "audit nowhere")
    (reply,) = bot.responses()
    assert "No governed workspace matches 'nowhere'" in text_of(reply)


def test_a_forbidden_workspace_is_named_and_the_rest_still_shown(bot: Bot, people: People) -> None:
    bot.databricks.fail("staging", "/api/2.0/token-management/tokens", 403)
    bot.command(people.alice, "audit")
    (reply,) = bot.responses()
    text = text_of(reply)
    assert "Could not read these workspaces" in text and "staging" in text and "permission denied" in text
    assert "dbt prod" in text


def test_hostile_comments_are_escaped(bot: Bot, people: People) -> None:
    with bot.databricks.lock:
        bot.databricks.workspace("prod").tokens[
            0
        ].comment = "<!channel> <@U0BOSS> <https://evil.example|click>"
    bot.command(people.alice, "audit")
    (reply,) = bot.responses()
    text = text_of(reply)
    assert "<!channel>" not in text and "<@U0BOSS>" not in text and "<https://evil" not in text


@pytest.mark.parametrize(
    ("secret", "age"),
    [("wrong-secret", 0), (SIGNING_SECRET, 6 * 60)],
    ids=["bad-signature", "replayed-after-5-minutes"],
)
def test_bad_signature_or_replay_is_refused_without_side_effects(
    bot: Bot, people: People, secret: str, age: int
) -> None:
    body = slash_command_body("/pat", "audit all", people.approver, "C1", bot.slack.response_url("evil"))
    status, _ = bot.post(body, secret=secret, timestamp=int(time.time()) - age)
    assert status == 401
    time.sleep(0.5)
    assert bot.slack.response_posts("evil") == [] and not bot.slack.uploads
    assert bot.databricks.count_requests() == 0


def test_unsigned_request_is_refused(bot: Bot, people: People) -> None:
    body = slash_command_body("/pat", "audit", people.alice, "C1", bot.slack.response_url("x"))
    status, _ = bot.post(body, signed=False)
    assert status == 401


def test_app_home_shows_own_tokens_with_revoke_buttons(bot: Bot, people: People) -> None:
    status, _ = bot.event({"type": "app_home_opened", "user": people.bob, "tab": "home", "channel": "D1"})
    assert status == 200
    views = wait_until(lambda: [v for v in [bot.slack.home_view(people.bob)] if v])
    assert views
    blocks = views[0]["blocks"]
    buttons = [b["accessory"] for b in blocks if "accessory" in b]
    bob_tokens = [
        t.token_id
        for ws in bot.databricks.names
        for t in bot.databricks.workspace(ws).tokens
        if t.created_by_username == "bob@example.com"
    ]
    assert sorted(b["value"] for b in buttons) == sorted(bob_tokens)


def test_app_home_for_unknown_user_explains(bot: Bot, people: People) -> None:
    bot.event({"type": "app_home_opened", "user": people.no_email, "tab": "home", "channel": "D1"})
    views = wait_until(lambda: [v for v in [bot.slack.home_view(people.no_email)] if v])
    assert "cannot see an e-mail address" in json.dumps(views[0])


def test_health_and_metrics(bot: Bot, people: People) -> None:
    assert bot.get("/healthz") == (200, "ok\n")
    assert bot.get("/readyz")[0] == 200
    bot.command(people.alice, "audit")
    bot.responses()
    status, metrics = bot.get("/metrics")
    assert status == 200
    assert 'patbot_requests_total{kind="command",name="audit"} 1.0' in metrics
    assert "patbot_ack_seconds_bucket" in metrics


def test_readyz_is_503_when_redis_is_down_and_audit_still_answers(bot_factory, people: People) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    bot = bot_factory(redis_client=dead)
    status, body = bot.get("/readyz")
    assert status == 503 and "redis unavailable" in body
    bot.command(people.alice, "audit")
    (reply,) = bot.responses()
    assert "dbt prod" in text_of(reply)


def test_no_secret_reaches_slack(bot: Bot, people: People) -> None:
    bot.command(people.approver, "audit all")
    bot.responses()
    everything = json.dumps([c.args for c in bot.slack.calls()]) + json.dumps(
        [p.body for p in bot.slack.response_posts()]
    )
    assert DEFAULT_ADMIN_TOKEN not in everything and SIGNING_SECRET not in everything
