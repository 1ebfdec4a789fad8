"""/pat create, /pat rotate and /pat policy end to end, and proof that a token value only reaches the secret scope."""

from __future__ import annotations

import json
import logging
import re

import pytest

from bot.sandbox.databricks_emulator import MAX_TOKENS_PER_PRINCIPAL, DatabricksEmulator, EmulatedToken
from handlers.approval_blocks import ACTION_APPROVE
from tests.fixtures.emulators import ADMIN_CHANNEL, Bot, People, wait_until
from tests.integration.test_slack_revoke import button_value, click, text_of

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens"
OBO = "/api/2.0/token-management/on-behalf-of/tokens"


@pytest.fixture
def pbot(bot_factory) -> Bot:
    return bot_factory(secret_scope="patbot")


def ask(bot: Bot, user: str, text: str) -> dict:
    bot.command(user, text)
    (reply,) = bot.responses()
    return reply


def approve_latest(bot: Bot, approver: str) -> str:
    messages = bot.slack.messages_to(ADMIN_CHANNEL)
    request_id = button_value({"blocks": messages[-1].blocks}, ACTION_APPROVE)
    bot.action(approver, ACTION_APPROVE, request_id, channel_id=ADMIN_CHANNEL, message_ts=messages[-1].ts)
    done = wait_until(
        lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.ts == messages[-1].ts and m.edits]
    )
    assert done, "the admin message was not updated"
    return json.dumps(done[0].blocks, ensure_ascii=False)


def sp_tokens(databricks: DatabricksEmulator, workspace: str, name: str) -> list[EmulatedToken]:
    with databricks.lock:
        ws = databricks.workspace(workspace)
        sp = next(p for p in ws.principals if p.display_name == name)
        return [t for t in ws.tokens if t.owner_id == sp.id]


def everything_said(bot: Bot, caplog: pytest.LogCaptureFixture) -> str:
    slack = json.dumps([c.args for c in bot.slack.calls()]) + json.dumps(
        [p.body for p in bot.slack.response_posts()]
    )
    logs = "\n".join(r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records)
    assert bot.services.approvals is not None
    audit = json.dumps([e.__dict__ for e in bot.services.approvals.audit.entries()], default=str)
    requests = json.dumps([r.body for r in bot.databricks.requests], default=str)
    return slack + logs + audit + requests


# --------------------------------------------------------------------------- create


def test_create_needs_approval_and_the_value_only_reaches_the_secret_scope(
    pbot: Bot, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = {t.token_id for t in sp_tokens(pbot.databricks, "prod", "etl-pipeline")}
    reply = ask(pbot, people.bob, "create etl-pipeline 30d workspace=prod scopes=sql nightly load")
    assert "sent to the approvers" in text_of(reply)
    text = approve_latest(pbot, people.approver)
    new = [t for t in sp_tokens(pbot.databricks, "prod", "etl-pipeline") if t.token_id not in before]
    assert len(new) == 1
    token = new[0]
    assert re.fullmatch(r"nightly load \[patbot:\w+\]", token.comment), (
        "the comment, tagged to be found again"
    )
    assert token.expiry_time - token.creation_time == 30 * 86400 * 1000
    stored = pbot.databricks.workspace("prod").secrets[("patbot", "etl-pipeline-token")]
    assert stored == token.token_value and stored.startswith("dapi")
    assert "patbot/etl-pipeline-token" in text and token.token_id[:12] in text
    assert stored not in everything_said(pbot, caplog)
    assert pbot.databricks.count_requests("POST", "/api/2.0/secrets/put") == 1


def test_create_is_refused_without_a_secret_scope_before_any_databricks_call(
    bot: Bot, people: People
) -> None:
    reply = ask(bot, people.bob, "create etl-pipeline 30d workspace=prod scopes=sql")
    assert "PATBOT_SECRET_SCOPE is not set" in text_of(reply)
    assert bot.databricks.count_requests() == 0 and bot.slack.messages_to(ADMIN_CHANNEL) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("create etl-pipeline 30d scopes=sql", "exists in several workspaces (prod, staging, analytics)"),
        ("create nobody-sp 30d scopes=sql", "No service principal `nobody-sp`"),
        ("create etl-pipeline 91d workspace=staging scopes=sql", "above the maximum of 90 days"),
        ("create etl-pipeline never workspace=prod scopes=sql", "Tokens always expire"),
        ("create etl-pipeline 0d workspace=prod scopes=sql", "at least 1 hour"),
        ("create etl-pipeline", "Usage: `/pat create"),
        ("create etl-pipeline 30d workspace=nowhere scopes=sql", "No governed workspace matches 'nowhere'"),
    ],
)
def test_create_refusals(pbot: Bot, people: People, text: str, expected: str) -> None:
    assert expected in text_of(ask(pbot, people.bob, text))
    assert pbot.slack.messages_to(ADMIN_CHANNEL) == []


def test_create_respects_the_workspace_cap(bot_factory, people: People) -> None:
    bot = bot_factory(secret_scope="patbot", max_lifetime_days=400)
    assert "prod's maxTokenLifetimeDays of 90" in text_of(
        ask(bot, people.bob, "create ml-serving 100d workspace=prod scopes=sql")
    )
    assert "sent to the approvers" in text_of(
        ask(bot, people.bob, "create ml-serving 100d workspace=staging scopes=sql")
    )


def test_create_with_on_behalf_of_disabled_says_so(pbot: Bot, people: People) -> None:
    ask(pbot, people.bob, "create ml-serving 7d workspace=analytics scopes=sql")
    with pbot.databricks.lock:
        pbot.databricks.workspace("analytics").obo_enabled = False
    text = approve_latest(pbot, people.approver)
    assert "no token created" in text and "analytics" in text and "On-behalf-of" in text


def test_create_over_quota_says_so(pbot: Bot, people: People) -> None:
    existing = sp_tokens(pbot.databricks, "prod", "ml-serving")
    with pbot.databricks.lock:
        ws = pbot.databricks.workspace("prod")
        template = existing[0]
        for i in range(MAX_TOKENS_PER_PRINCIPAL - len(existing)):
            ws.tokens.append(
                EmulatedToken(
                    f"quota{i:027d}",
                    template.owner_id,
                    template.created_by_username,
                    "",
                    template.creation_time,
                    template.expiry_time,
                    workspace_id=ws.workspace_id,
                )
            )
    ask(pbot, people.bob, "create ml-serving 7d workspace=prod scopes=sql")
    text = approve_latest(pbot, people.approver)
    assert "no token created" in text and "creating a token in prod: token quota reached" in text


def test_create_store_failure_revokes_the_unusable_token(pbot: Bot, people: People, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    before = {t.token_id for t in sp_tokens(pbot.databricks, "prod", "ml-serving")}
    ask(pbot, people.bob, "create ml-serving 7d workspace=prod scopes=sql")
    pbot.databricks.fail("prod", "/api/2.0/secrets/put", 403)
    text = approve_latest(pbot, people.approver)
    assert "created but NOT stored" in text and "revoked again" in text
    assert {t.token_id for t in sp_tokens(pbot.databricks, "prod", "ml-serving")} == before


# --------------------------------------------------------------------------- rotate


def etl_token(bot: Bot) -> EmulatedToken:
    return next(t for t in sp_tokens(bot.databricks, "prod", "etl-pipeline") if t.comment == "nightly ETL")


def test_rotate_a_service_principal_token(pbot: Bot, people: People, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    old = etl_token(pbot)
    reply = ask(pbot, people.bob, f"rotate {old.token_id[:12]}")
    assert "sent to the approvers" in text_of(reply)
    text = approve_latest(pbot, people.approver)
    assert "Rotated" in text and "old token" in text and "revoked" in text
    tokens = sp_tokens(pbot.databricks, "prod", "etl-pipeline")
    assert old.token_id not in {t.token_id for t in tokens}
    new = [t for t in tokens if t.comment.startswith("nightly ETL (rotated ")]
    assert len(new) == 1 and new[0].expiry_time - new[0].creation_time == 90 * 86400 * 1000
    stored = pbot.databricks.workspace("prod").secrets[("patbot", "etl-pipeline-token")]
    assert stored == new[0].token_value
    assert stored not in everything_said(pbot, caplog)


def test_rotation_reuses_the_key_a_token_was_created_under(pbot: Bot, people: People) -> None:
    ask(pbot, people.bob, "create ml-serving 7d workspace=staging scopes=sql")
    approve_latest(pbot, people.approver)
    assert pbot.services.redis is not None
    created = [t for t in sp_tokens(pbot.databricks, "staging", "ml-serving") if t.token_value]
    pbot.services.redis.hset("patbot:secret-keys", created[0].token_id, "patbot/custom-key")
    ask(pbot, people.bob, f"rotate {created[0].token_id}")
    approve_latest(pbot, people.approver)
    assert ("patbot", "custom-key") in pbot.databricks.workspace("staging").secrets


def test_rotate_create_failure_changes_nothing(pbot: Bot, people: People) -> None:
    old = etl_token(pbot)
    ask(pbot, people.bob, f"rotate {old.token_id}")
    pbot.databricks.fail("prod", OBO, 403)
    text = approve_latest(pbot, people.approver)
    assert "nothing changed" in text
    assert old.token_id in {t.token_id for t in sp_tokens(pbot.databricks, "prod", "etl-pipeline")}


def test_rotate_store_failure_keeps_the_old_token(pbot: Bot, people: People) -> None:
    old = etl_token(pbot)
    count = len(sp_tokens(pbot.databricks, "prod", "etl-pipeline"))
    ask(pbot, people.bob, f"rotate {old.token_id}")
    pbot.databricks.fail("prod", "/api/2.0/secrets/put", 503)
    text = approve_latest(pbot, people.approver)
    assert "NOT stored" in text and "old token" in text and "untouched" in text
    assert len(sp_tokens(pbot.databricks, "prod", "etl-pipeline")) == count


def test_rotate_old_token_revoke_failure_says_exactly_what_was_done(pbot: Bot, people: People) -> None:
    old = etl_token(pbot)
    ask(pbot, people.bob, f"rotate {old.token_id}")
    pbot.databricks.fail("prod", f"{TOKENS}/{old.token_id}", 403, method="DELETE")
    text = approve_latest(pbot, people.approver)
    assert "stored in secret patbot/etl-pipeline-token" in text and "NOT revoked" in text
    assert pbot.services.approvals is not None
    assert old.token_id in {t.token_id for t in sp_tokens(pbot.databricks, "prod", "etl-pipeline")}


def test_rotate_a_user_token_guides_the_owner(pbot: Bot, people: People) -> None:
    with pbot.databricks.lock:
        alice = next(
            t
            for t in pbot.databricks.workspace("prod").tokens
            if t.created_by_username == "alice@example.com"
        )
    reply = ask(pbot, people.approver, f"rotate {alice.token_id[:12]}")
    assert "I sent alice@example.com a DM" in text_of(reply)
    dm = wait_until(lambda: pbot.slack.messages_to(people.alice))[0]
    blocks = json.dumps(dm.blocks)
    assert "Generate new token" in blocks and "at most 90 days" in blocks and alice.token_id in blocks
    assert pbot.slack.messages_to(ADMIN_CHANNEL) == []


def test_rotate_without_secret_scope_refuses(bot: Bot, people: People) -> None:
    with bot.databricks.lock:
        etl = next(t for t in bot.databricks.workspace("prod").tokens if t.comment == "nightly ETL")
    assert "PATBOT_SECRET_SCOPE is not set" in text_of(ask(bot, people.bob, f"rotate {etl.token_id}"))


# --------------------------------------------------------------------------- policy


def test_policy_is_for_approvers(pbot: Bot, people: People) -> None:
    assert "Only approvers" in text_of(ask(pbot, people.alice, "policy"))
    assert "Only approvers" in text_of(ask(pbot, people.alice, "policy max-lifetime 30"))


def test_policy_shows_posture_with_warnings(pbot: Bot, people: People) -> None:
    text = text_of(ask(pbot, people.approver, "policy"))
    assert "*prod*: personal access tokens allowed; new tokens live at most 90 days" in text
    assert (
        "*staging*: personal access tokens allowed; no maximum set, so Databricks lets new tokens live up to 730 days :warning:"
        in text
    )
    assert "*analytics*: personal access tokens allowed; new tokens live at most 365 days :warning:" in text


def test_policy_change_via_approval(pbot: Bot, people: People) -> None:
    reply = ask(pbot, people.approver, "policy max-lifetime 60 staging")
    assert "sent to the approvers" in text_of(reply)
    refusal = click(
        pbot,
        people.approver,
        ACTION_APPROVE,
        button_value({"blocks": pbot.slack.messages_to(ADMIN_CHANNEL)[-1].blocks}, ACTION_APPROVE),
        reply=True,
    )
    assert "four eyes" in text_of(refusal)
    text = approve_latest(pbot, people.approver2)
    assert "new tokens now live at most 60 days (maxTokenLifetimeDays) on staging" in text
    assert pbot.databricks.workspace("staging").conf["maxTokenLifetimeDays"] == "60"
    assert pbot.databricks.workspace("prod").conf["maxTokenLifetimeDays"] == "90"


@pytest.mark.parametrize("days", ["0", "731", "lots"])
def test_policy_refuses_bad_days(pbot: Bot, people: People, days: str) -> None:
    assert "from 1 to 730" in text_of(ask(pbot, people.approver, f"policy max-lifetime {days}"))
