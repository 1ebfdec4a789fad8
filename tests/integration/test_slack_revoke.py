"""/pat revoke with approvals, end to end: signed clicks, real HTTP, both emulators, fakeredis or real Redis."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.approvals import connect_redis
from bot.flows.decide import sweep_expired
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator
from handlers.approval_blocks import ACTION_APPROVE, ACTION_CANCEL, ACTION_CONFIRM, ACTION_DENY, VIEW_CONFIRM
from handlers.blocks import ACTION_REVOKE_OWN
from tests.fixtures.emulators import ADMIN_CHANNEL, Bot, People, wait_until

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens/"


def token_of(databricks: DatabricksEmulator, owner: str, workspace: str = "prod", index: int = 0) -> str:
    with databricks.lock:
        mine = [t for t in databricks.workspace(workspace).tokens if t.created_by_username == owner]
        return mine[index].token_id


def text_of(body: dict) -> str:
    return json.dumps(body.get("blocks", []), ensure_ascii=False) + body.get("text", "")


def button_value(body: dict, action_id: str) -> str:
    for block in body.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button in {body}")


def deletes(bot: Bot) -> int:
    return bot.databricks.count_requests("DELETE", TOKENS)


def admin_messages(bot: Bot) -> list:
    return wait_until(lambda: bot.slack.messages_to(ADMIN_CHANNEL))


def request_for_others(bot: Bot, requester: str, token_id: str, reason: str = "left the team") -> str:
    bot.command(requester, f"revoke {token_id[:12]} {reason}")
    (reply,) = bot.responses()
    assert "sent to the approvers" in text_of(reply), reply
    (message,) = admin_messages(bot)
    return button_value({"blocks": message.blocks}, ACTION_APPROVE)


def click(bot: Bot, user: str, action: str, request_id: str, *, reply: bool = False) -> dict:
    """Click a button on the admin message; returns the ephemeral answer (waited for when `reply`), or {}
    once the message is updated."""
    message = bot.slack.messages_to(ADMIN_CHANNEL)[0]
    edits = message.edits
    bot.action(user, action, request_id, channel_id=ADMIN_CHANNEL, message_ts=message.ts)
    key = bot.last_key
    wait_until(
        lambda: (
            bot.slack.response_posts(key)
            or ([] if reply else [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits > edits])
        )
    )
    replies = bot.slack.response_posts(key)
    return replies[0].body if replies else {}


# --------------------------------------------------------------------------- the owner's own token


def test_owner_confirms_and_the_token_is_revoked_once(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    bot.command(people.alice, f"revoke {token_id[:12]} rotating")
    (reply,) = bot.responses()
    assert reply["response_type"] == "ephemeral" and "Revoke now" in text_of(reply)
    assert bot.slack.messages_to(ADMIN_CHANNEL) == [], "the owner needs no approver"
    request_id = button_value(reply, ACTION_CONFIRM)
    bot.action(
        people.alice, ACTION_CONFIRM, request_id, channel_id="CGENERAL01", message_ts="1.1", is_ephemeral=True
    )
    (done,) = bot.responses()
    assert done["replace_original"] is True and "Revoked" in text_of(done)
    assert deletes(bot) == 1
    assert bot.databricks.workspace("prod").token(token_id) is None
    bot.action(
        people.alice, ACTION_CONFIRM, request_id, channel_id="CGENERAL01", message_ts="1.1", is_ephemeral=True
    )
    (again,) = bot.responses()
    assert "already approved" in text_of(again)
    assert deletes(bot) == 1, "a double click never deletes twice"


def test_owner_cancels_and_nothing_happens(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "bob@example.com")
    bot.command(people.bob, f"revoke {token_id}")
    (reply,) = bot.responses()
    bot.action(
        people.bob,
        ACTION_CANCEL,
        button_value(reply, ACTION_CANCEL),
        channel_id="C1",
        message_ts="1.1",
        is_ephemeral=True,
    )
    (done,) = bot.responses()
    assert "Cancelled" in text_of(done) and deletes(bot) == 0


def test_someone_else_cannot_confirm_an_owners_revoke(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    bot.command(people.alice, f"revoke {token_id}")
    (reply,) = bot.responses()
    bot.action(
        people.approver,
        ACTION_CONFIRM,
        button_value(reply, ACTION_CONFIRM),
        channel_id="C1",
        message_ts="1.1",
        is_ephemeral=True,
    )
    (refusal,) = bot.responses()
    assert "Only the token's owner" in text_of(refusal) and deletes(bot) == 0


# --------------------------------------------------------------------------- someone else's token


def test_request_approved_by_an_approver(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    message = bot.slack.messages_to(ADMIN_CHANNEL)[0]
    assert "left the team" in json.dumps(message.blocks) and "Approve" in json.dumps(message.blocks)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    text = json.dumps(updated[0].blocks, ensure_ascii=False)
    assert "Approved by <@" + people.approver + ">" in text and "Revoked" in text
    assert "pat_approve" not in text, "buttons are gone"
    assert deletes(bot) == 1
    dms_bob = wait_until(lambda: bot.slack.messages_to(people.bob))
    dms_alice = wait_until(lambda: bot.slack.messages_to(people.alice))
    assert request_id in dms_bob[0].text and "your token" in dms_alice[0].text


def test_request_denied(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "carol@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    click(bot, people.group_member, ACTION_DENY, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert "Denied by <@" + people.group_member + ">" in json.dumps(updated[0].blocks)
    assert deletes(bot) == 0
    assert "Denied" in wait_until(lambda: bot.slack.messages_to(people.bob))[0].text
    assert bot.slack.messages_to(people.carol) == [], "the owner is told only on approval"


def test_four_eyes_even_for_approvers(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.approver, token_id)
    refusal = click(bot, people.approver, ACTION_APPROVE, request_id, reply=True)
    assert "another approver has to decide" in text_of(refusal)
    assert deletes(bot) == 0
    click(bot, people.approver2, ACTION_APPROVE, request_id)
    wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert deletes(bot) == 1


def test_non_approvers_cannot_decide(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    refusal = click(bot, people.carol, ACTION_APPROVE, request_id, reply=True)
    assert "Only approvers" in text_of(refusal) and refusal["response_type"] == "ephemeral"
    assert deletes(bot) == 0 and not [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits]


def test_duplicate_requests_are_refused(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.command(people.carol, f"revoke {token_id[:12]}")
    (reply,) = bot.responses()
    assert "already pending" in text_of(reply) and request_id in text_of(reply)
    assert len(bot.slack.messages_to(ADMIN_CHANNEL)) == 1


def test_failed_revoke_is_recorded_and_shown(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    bot.databricks.fail("prod", TOKENS, 403, method="DELETE")
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    text = json.dumps(updated[0].blocks)
    assert "Failed" in text and "NOT revoked" in text and "permission denied" in text
    assert bot.services.approvals is not None
    stored = bot.services.approvals.get(request_id)
    assert stored.outcome == "failed" and "NOT revoked" in (stored.outcome_detail or "")


def test_token_already_gone_is_said(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    with bot.databricks.lock:
        ws = bot.databricks.workspace("prod")
        ws.tokens.remove(ws.token(token_id))
    click(bot, people.approver, ACTION_APPROVE, request_id)
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert "already gone" in json.dumps(updated[0].blocks)
    assert deletes(bot) == 1, "one DELETE, answered 404"


# --------------------------------------------------------------------------- finding the token


def test_ambiguous_prefix_lists_distinguishable_candidates(bot: Bot, people: People) -> None:
    with bot.databricks.lock:
        prod = bot.databricks.workspace("prod").tokens
        shared = prod[1].token_id[:10]
    bot.command(people.approver, f"revoke {shared}")
    (reply,) = bot.responses()
    text = text_of(reply)
    assert "matches 2 tokens" in text
    assert f"`{prod[1].token_id[:12]}`" in text and f"`{prod[2].token_id[:12]}`" in text
    assert deletes(bot) == 0 and bot.slack.messages_to(ADMIN_CHANNEL) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("revoke abc", "too short"),
        ("revoke 0000000000000000", "No token with an ID starting with"),
        ("revoke", "Usage: `/pat revoke"),
    ],
)
def test_bad_token_ids_get_clear_answers(bot: Bot, people: People, text: str, expected: str) -> None:
    bot.command(people.bob, text)
    (reply,) = bot.responses()
    assert expected in text_of(reply)


# --------------------------------------------------------------------------- expiry


def test_expired_request_cannot_be_approved_and_the_sweep_updates_messages(
    bot_factory, people: People
) -> None:
    clock = FakeClock()
    bot = bot_factory(clock=clock, approval_ttl_hours=1)
    first = request_for_others(bot, people.bob, token_of(bot.databricks, "alice@example.com"))
    clock.advance(hours=1)
    refusal = click(bot, people.approver, ACTION_APPROVE, first, reply=True)
    assert "expired" in text_of(refusal) and deletes(bot) == 0
    updated = wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert "Expired" in json.dumps(updated[0].blocks)

    bot.command(people.bob, f"revoke {token_of(bot.databricks, 'carol@example.com')[:12]}")
    bot.responses()
    clock.advance(hours=2)
    assert sweep_expired(bot.ctx.deps) == 1
    assert all(m.edits for m in bot.slack.messages_to(ADMIN_CHANNEL))


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


# --------------------------------------------------------------------------- Home tab


def test_home_revoke_button_opens_a_confirmation_modal(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    bot.action(people.alice, ACTION_REVOKE_OWN, token_id, view={"id": "VHOME", "type": "home"})
    modals = wait_until(lambda: [m for m in bot.slack.modals() if m.get("callback_id") == VIEW_CONFIRM])
    modal = modals[0]
    assert "Revoke now" in json.dumps(modal)
    from bot.sandbox.slack_signing import view_submission_body

    status, body = bot.post(view_submission_body(people.alice, modal))
    assert status == 200 and "Revoking" in body
    done = wait_until(lambda: [m for m in bot.slack.modals() if "Revoked" in json.dumps(m)])
    assert done and deletes(bot) == 1


def test_home_revoke_of_someone_elses_token_is_not_confirmed(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "bob@example.com")
    bot.action(people.alice, ACTION_REVOKE_OWN, token_id, view={"id": "VHOME", "type": "home"})
    modals = wait_until(lambda: [m for m in bot.slack.modals() if "sent to the approvers" in json.dumps(m)])
    assert modals and deletes(bot) == 0


def test_no_secret_in_any_slack_message(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    request_id = request_for_others(bot, people.bob, token_id)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    wait_until(lambda: bot.slack.messages_to(people.alice))
    everything = json.dumps([c.args for c in bot.slack.calls()]) + json.dumps(
        [p.body for p in bot.slack.response_posts()]
    )
    assert DEFAULT_ADMIN_TOKEN not in everything


# --------------------------------------------------------------------------- real Redis


def test_fifty_concurrent_approvals_delete_once(bot_factory, people: People, redis_url: str) -> None:
    client, _ = connect_redis(redis_url)
    bot = bot_factory(redis_client=client)
    request_id = request_for_others(bot, people.bob, token_of(bot.databricks, "alice@example.com"))
    message = bot.slack.messages_to(ADMIN_CHANNEL)[0]
    statuses: list[int] = []

    def approve(i: int) -> None:
        who = people.approver if i % 2 else people.approver2
        status, _ = bot.action(
            who, ACTION_APPROVE, request_id, channel_id=ADMIN_CHANNEL, message_ts=message.ts
        )
        statuses.append(status)

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 50
    refusals = wait_until(
        lambda: [p for p in bot.slack.response_posts() if "already approved" in text_of(p.body)], 49
    )
    assert len(refusals) == 49
    assert deletes(bot) == 1
    updates = [c for c in bot.slack.calls("chat.update") if "Revoked" in json.dumps(c.args)]
    assert len(updates) == 1
    assert bot.services.approvals is not None
    outcomes = [e for e in bot.services.approvals.audit.entries() if e.event == "outcome"]
    assert len(outcomes) == 1 and outcomes[0].outcome == "revoked"


def test_pending_request_survives_a_restart(bot_factory, people: People, redis_url: str) -> None:
    first = bot_factory(redis_client=connect_redis(redis_url)[0])
    request_id = request_for_others(first, people.bob, token_of(first.databricks, "alice@example.com"))
    second = bot_factory(redis_client=connect_redis(redis_url)[0])  # a new process would build all anew
    message = second.slack.messages_to(ADMIN_CHANNEL)[0]
    second.action(
        people.approver, ACTION_APPROVE, request_id, channel_id=ADMIN_CHANNEL, message_ts=message.ts
    )
    wait_until(lambda: [m for m in second.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert deletes(second) == 1


def test_redis_down_gives_a_clear_answer_and_recovers(
    bot_factory, people: People, redis_server, redis_url: str
) -> None:
    bot = bot_factory(redis_client=connect_redis(redis_url)[0])
    token_id = token_of(bot.databricks, "alice@example.com")
    redis_server.stop()
    bot.command(people.bob, f"revoke {token_id[:12]}")
    (reply,) = bot.responses()
    assert "approvals store is unavailable" in text_of(reply)
    assert bot.slack.messages_to(ADMIN_CHANNEL) == [] and deletes(bot) == 0
    assert bot.get("/readyz")[0] == 503
    redis_server.start()
    assert bot.get("/readyz")[0] == 200
    request_id = request_for_others(bot, people.bob, token_id)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert deletes(bot) == 1


def test_patbot_log_prints_requests_and_decisions(bot: Bot, people: People) -> None:
    import io

    from entrypoints.cli import main

    request_id = request_for_others(bot, people.bob, token_of(bot.databricks, "alice@example.com"))
    click(bot, people.approver, ACTION_APPROVE, request_id)
    wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    out = io.StringIO()
    assert main(["log", "--format", "json"], parts=bot.parts, out=out) == 0
    rows = json.loads(out.getvalue())
    assert [r["event"] for r in rows] == ["created", "approved", "outcome"]
    assert rows[1]["approver"] == people.approver and rows[0]["requester"] == people.bob
    assert rows[2]["outcome"] == "revoked" and all(r["request"] == request_id for r in rows)
    table = io.StringIO()
    assert main(["log"], parts=bot.parts, out=table) == 0
    assert table.getvalue().startswith("TIME") and "revoked" in table.getvalue()


def test_an_unconfirmed_owner_revoke_does_not_block_others(bot: Bot, people: People) -> None:
    token_id = token_of(bot.databricks, "alice@example.com")
    bot.command(people.alice, f"revoke {token_id}")
    (confirm,) = bot.responses()
    owner_request = button_value(confirm, ACTION_CONFIRM)
    request_id = request_for_others(bot, people.bob, token_id)
    assert request_id != owner_request
    bot.action(
        people.alice, ACTION_CONFIRM, owner_request, channel_id="C1", message_ts="1.1", is_ephemeral=True
    )
    (late,) = bot.responses()
    assert "already cancelled" in text_of(late)
    click(bot, people.approver, ACTION_APPROVE, request_id)
    wait_until(lambda: [m for m in bot.slack.messages_to(ADMIN_CHANNEL) if m.edits])
    assert deletes(bot) == 1
