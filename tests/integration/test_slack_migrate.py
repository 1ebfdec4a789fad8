"""/pat migrate end to end through Bolt over signed HTTP, against the Databricks and Slack emulators: four
eyes, exactly one secrets POST to the principal's numeric ID, a lifetime and scopes no wider than allowed,
client ID and secret only in the secret scope, and the PATs listed with Revoke buttons, none revoked."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bot.databricks import sp_secrets_path
from bot.governance.scopes import covers
from bot.sandbox.databricks_emulator import DatabricksEmulator, EmulatedPrincipal, EmulatedSpSecret
from handlers.approval_blocks import ACTION_APPROVE
from handlers.blocks import ACTION_REVOKE_MIGRATED
from tests.fixtures.emulators import ADMIN_CHANNEL, Bot, People, wait_until
from tests.integration.test_slack_provisioning import approve_latest, ask, everything_said
from tests.integration.test_slack_revoke import button_value, text_of

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens"
MAX_DAYS = 90


@pytest.fixture
def pbot(bot_factory) -> Bot:
    return bot_factory(secret_scope="patbot")


def principal(databricks: DatabricksEmulator, name: str, ws: str = "prod") -> EmulatedPrincipal:
    with databricks.lock:
        return next(p for p in databricks.workspace(ws).principals if p.display_name == name)


def pats_of(databricks: DatabricksEmulator, sp: EmulatedPrincipal, ws: str = "prod") -> list[Any]:
    with databricks.lock:
        return [t for t in databricks.workspace(ws).tokens if t.owner_id == sp.id]


def secret_posts(databricks: DatabricksEmulator, sp: EmulatedPrincipal) -> list[Any]:
    return [r for r in databricks.requests if r.method == "POST" and r.path == sp_secrets_path(str(sp.id))]


def redis_dump(bot: Bot) -> str:
    client = bot.services.redis
    assert client is not None
    out = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        reads = {
            "string": client.get,
            "hash": client.hgetall,
            "list": lambda k: client.lrange(k, 0, -1),
            "set": client.smembers,
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            "stream": lambda k: client.xrange(k),
        }
        out.append(f"{key!r} {reads[kind](key)!r}" if kind in reads else repr(key))
    return "\n".join(out)


def pat_buttons(blocks: list[dict]) -> list[str]:
    return [
        b["accessory"]["value"]
        for b in blocks
        if b.get("accessory", {}).get("action_id") == ACTION_REVOKE_MIGRATED
    ]


def test_migrate_needs_approval_creates_one_scoped_secret_and_lists_the_pats(
    pbot: Bot, people: People, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sp = principal(pbot.databricks, "ml-serving")
    pats = pats_of(pbot.databricks, sp)
    reply = ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    assert "sent to the approvers" in text_of(reply)
    assert secret_posts(pbot.databricks, sp) == [], "nothing is created before approval"
    (request,) = pbot.slack.messages_to(ADMIN_CHANNEL)
    asked = json.dumps(request.blocks)
    assert "from PATs to OAuth" in asked and "model-serving" in asked and "Full access" not in asked

    text = approve_latest(pbot, people.approver)

    (post,) = secret_posts(pbot.databricks, sp)
    lifetime = int(post.body["lifetime"].removesuffix("s"))
    assert 0 < lifetime <= MAX_DAYS * 86_400
    union = [s for t in pats for s in (t.scopes or ["all-apis"])]
    assert post.body["scopes"] and covers(union, post.body["scopes"]), "scopes within its PATs' scopes"
    with pbot.databricks.lock:
        ws = pbot.databricks.workspace("prod")
        (secret,) = [s for s in ws.sp_secrets if s.principal_id == sp.id]
        stored_id = ws.secrets[("patbot", "ml-serving-oauth-client-id")]
        stored_secret = ws.secrets[("patbot", "ml-serving-oauth-secret")]
    assert stored_id == sp.application_id
    assert stored_secret.startswith("dose") and secret.secret_hash
    assert "migrated" in text.lower() or "OAuth secret" in text
    assert "DATABRICKS_CLIENT_ID" in text and "patbot/ml-serving-oauth-client-id" in text
    assert "DATABRICKS_CLIENT_SECRET" in text and "patbot/ml-serving-oauth-secret" in text

    (decided,) = pbot.slack.messages_to(ADMIN_CHANNEL)
    assert sorted(pat_buttons(decided.blocks)) == sorted(t.token_id for t in pats)
    dm = wait_until(lambda: [m for m in pbot.slack.messages_to(people.bob) if m.blocks])
    assert dm and sorted(pat_buttons(dm[-1].blocks)) == sorted(t.token_id for t in pats)
    assert "DATABRICKS_CLIENT_SECRET" in json.dumps(dm[-1].blocks)
    assert pbot.databricks.count_requests("DELETE") == 0, "nothing revoked"
    assert len(pats_of(pbot.databricks, sp)) == len(pats)

    said = everything_said(pbot, caplog) + redis_dump(pbot)
    said += json.dumps([(u.content or b"").decode(errors="replace") for u in pbot.slack.uploads])
    assert stored_secret not in said


def test_a_revoke_button_asks_the_approvers_and_revokes_nothing_by_itself(pbot: Bot, people: People) -> None:
    sp = principal(pbot.databricks, "ml-serving")
    ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    approve_latest(pbot, people.approver)
    (decided,) = pbot.slack.messages_to(ADMIN_CHANNEL)
    token_id = pat_buttons(decided.blocks)[0]
    pbot.action(
        people.approver2, ACTION_REVOKE_MIGRATED, token_id, channel_id=ADMIN_CHANNEL, message_ts=decided.ts
    )
    (answer,) = pbot.responses()
    assert "sent to the approvers" in text_of(answer)
    requests = wait_until(lambda: pbot.slack.messages_to(ADMIN_CHANNEL), count=2)
    revoke = json.dumps(requests[-1].blocks)
    assert token_id[:12] in revoke and "replaced by an OAuth secret" in revoke
    assert pbot.databricks.count_requests("DELETE", TOKENS) == 0
    assert token_id in {t.token_id for t in pats_of(pbot.databricks, sp)}


def test_full_access_only_when_a_pat_has_it_and_the_approver_sees_it(pbot: Bot, people: People) -> None:
    sp = principal(pbot.databricks, "etl-pipeline")
    wide = next(t for t in pats_of(pbot.databricks, sp) if not t.scopes)
    ask(pbot, people.bob, "migrate etl-pipeline workspace=prod")
    (request,) = pbot.slack.messages_to(ADMIN_CHANNEL)
    asked = json.dumps(request.blocks)
    assert "Full access (all-apis)" in asked and wide.token_id[:12] in asked
    approve_latest(pbot, people.approver)
    (post,) = secret_posts(pbot.databricks, sp)
    assert post.body["scopes"] == ["all-apis"]


def test_the_requester_cannot_approve_their_own_migration(pbot: Bot, people: People) -> None:
    sp = principal(pbot.databricks, "ml-serving")
    ask(pbot, people.approver, "migrate ml-serving workspace=prod")
    (message,) = pbot.slack.messages_to(ADMIN_CHANNEL)
    request_id = button_value({"blocks": message.blocks}, ACTION_APPROVE)
    pbot.action(people.approver, ACTION_APPROVE, request_id, channel_id=ADMIN_CHANNEL, message_ts=message.ts)
    (answer,) = pbot.responses()
    assert "approver" in text_of(answer).lower()
    assert secret_posts(pbot.databricks, sp) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("migrate nobody-sp", "No service principal `nobody-sp`"),
        ("migrate alice@example.com", "is a user, not a service principal"),
        ("migrate 'Alice Anders' workspace=prod", "is a user, not a service principal"),
        ("migrate etl-pipeline", "exists in several workspaces"),
        ("migrate etl-pipeline 30d", "Unexpected `30d`"),
        ("migrate", "Usage: `/pat migrate"),
    ],
)
def test_refusals_before_approval(pbot: Bot, people: People, text: str, expected: str) -> None:
    assert expected in text_of(ask(pbot, people.bob, text))
    assert pbot.slack.messages_to(ADMIN_CHANNEL) == []
    assert pbot.databricks.count_requests(path_prefix="/api/2.0/accounts/servicePrincipals") == 0


def test_refused_without_a_secret_scope_before_any_databricks_call(bot: Bot, people: People) -> None:
    assert "PATBOT_SECRET_SCOPE is not set" in text_of(
        ask(bot, people.bob, "migrate ml-serving workspace=prod")
    )
    assert bot.databricks.count_requests() == 0 and bot.slack.messages_to(ADMIN_CHANNEL) == []


def test_refused_without_live_pats(pbot: Bot, people: People) -> None:
    sp = principal(pbot.databricks, "ml-serving")
    with pbot.databricks.lock:
        ws = pbot.databricks.workspace("prod")
        ws.tokens = [t for t in ws.tokens if t.owner_id != sp.id]
    assert "holds no live PATs" in text_of(ask(pbot, people.bob, "migrate ml-serving workspace=prod"))


def test_a_lost_answer_is_read_back_and_the_valueless_secret_deleted(pbot: Bot, people: People) -> None:
    sp = principal(pbot.databricks, "ml-serving")
    ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    pbot.databricks.lose_answer("prod", "POST", sp_secrets_path(str(sp.id)), act=True, status=503)
    text = approve_latest(pbot, people.approver)
    assert len(secret_posts(pbot.databricks, sp)) == 1, "never sent twice"
    assert "WAS created" in text and "deleted again" in text
    with pbot.databricks.lock:
        assert pbot.databricks.workspace("prod").sp_secrets == [], "no secret left whose value nobody holds"
        assert ("patbot", "ml-serving-oauth-secret") not in pbot.databricks.workspace("prod").secrets
    assert pat_buttons(pbot.slack.messages_to(ADMIN_CHANNEL)[0].blocks) == [], "failed: no next steps"


def test_a_second_migration_never_overwrites_the_first_secret(pbot: Bot, people: People) -> None:
    sp = principal(pbot.databricks, "ml-serving")
    ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    approve_latest(pbot, people.approver)
    with pbot.databricks.lock:
        first = pbot.databricks.workspace("prod").secrets[("patbot", "ml-serving-oauth-secret")]
    ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    asked = json.dumps(pbot.slack.messages_to(ADMIN_CHANNEL)[-1].blocks)
    assert "patbot/ml-serving-oauth-2-secret" in asked and "holds the value of live" in asked
    text = approve_latest(pbot, people.approver)
    assert "ml-serving-oauth-2-secret" in text
    with pbot.databricks.lock:
        ws = pbot.databricks.workspace("prod")
        assert ws.secrets[("patbot", "ml-serving-oauth-secret")] == first
        assert len([s for s in ws.sp_secrets if s.principal_id == sp.id]) == 2


def test_keys_written_by_someone_else_are_left_alone(pbot: Bot, people: People) -> None:
    with pbot.databricks.lock:
        pbot.databricks.workspace("prod").secrets[("patbot", "ml-serving-oauth-secret")] = "someone else's"
    ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    approve_latest(pbot, people.approver)
    with pbot.databricks.lock:
        ws = pbot.databricks.workspace("prod")
        assert ws.secrets[("patbot", "ml-serving-oauth-secret")] == "someone else's"
        assert ("patbot", "ml-serving-oauth-2-secret") in ws.secrets


def test_an_expired_secret_frees_its_keys(pbot: Bot, people: People, now) -> None:
    sp = principal(pbot.databricks, "ml-serving")
    ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    approve_latest(pbot, people.approver)
    with pbot.databricks.lock:
        ws = pbot.databricks.workspace("prod")
        old: EmulatedSpSecret = ws.sp_secrets[0]
        old.expire_time = old.create_time + 1  # long gone
    ask(pbot, people.bob, "migrate ml-serving workspace=prod")
    asked = json.dumps(pbot.slack.messages_to(ADMIN_CHANNEL)[-1].blocks)
    assert "patbot/ml-serving-oauth-secret" in asked and "oauth-2" not in asked
    assert sp.id == old.principal_id
