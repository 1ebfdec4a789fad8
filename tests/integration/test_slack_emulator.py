"""The Slack Web API emulator, driven by the real slack_sdk WebClient (and Bolt) over HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.sandbox.slack_emulator import SlackEmulator
from bot.sandbox.slack_signing import (
    FORM_CONTENT_TYPE,
    block_action_body,
    event_body,
    headers_for,
    sign,
    slash_command_body,
)

pytestmark = pytest.mark.integration

TOKEN = "xoxb-test"
SECRET = "signing-secret"


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=emu.api_url, timeout=5)


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


def post_raw(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# --------------------------------------------------------------------------- identity and auth


def test_auth_test_reports_bot_identity(emu: SlackEmulator, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["ok"] is True
    assert (resp["team_id"], resp["user_id"], resp["bot_id"]) == ("T1", emu.bot_user.id, emu.bot_id)


def test_wrong_or_missing_token(emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxb-wrong", base_url=emu.api_url).auth_test()
    assert error_of(exc) == "invalid_auth"
    assert exc.value.response.status_code == 200
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=emu.api_url).auth_test()
    assert error_of(exc) == "not_authed"
    assert [c.error for c in emu.calls("auth.test")] == ["invalid_auth", "not_authed"]


def test_unknown_method(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.api_call("nope.nothing")
    assert error_of(exc) == "unknown_method"


def test_token_as_form_parameter_and_get_query(emu: SlackEmulator) -> None:
    user = emu.add_user("ann", email="ann@example.com")
    status, _, body = post_raw(
        f"{emu.api_url}users.info", f"token={TOKEN}&user={user.id}".encode(), FORM_CONTENT_TYPE
    )
    assert status == 200 and json.loads(body)["user"]["name"] == "ann"
    with urllib.request.urlopen(f"{emu.api_url}users.info?token={TOKEN}&user={user.id}", timeout=5) as resp:
        assert json.loads(resp.read())["user"]["profile"]["email"] == "ann@example.com"
    assert all("token" not in c.args for c in emu.calls())


# --------------------------------------------------------------------------- users and groups


def test_users_info(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann", email="ann@example.com", tz="Europe/Berlin")
    gone = emu.add_user("gone", email="gone@example.com", deleted=True)
    info = client.users_info(user=ann.id)["user"]
    assert info["id"] == ann.id and info["profile"]["email"] == "ann@example.com" and info["deleted"] is False
    assert info["tz"] == "Europe/Berlin" and info["tz_offset"] in (3600, 7200)
    assert client.users_info(user=gone.id)["user"]["deleted"] is True
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U404")
    assert error_of(exc) == "user_not_found"


def test_users_list_cursor_paging_over_450_users(emu: SlackEmulator, client: WebClient) -> None:
    seeded = emu.seed_users(450)
    pages, cursor = [], None
    while True:
        resp = client.users_list(limit=200, cursor=cursor)
        pages.append(resp["members"])
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert [len(p) for p in pages] == [200, 200, 51]  # 450 + the bot user
    ids = [m["id"] for page in pages for m in page]
    assert len(set(ids)) == 451
    assert [m["id"] for page in pages for m in page if not m["is_bot"]] == [u.id for u in seeded]
    # slack_sdk's own pagination (iterating a SlackResponse) follows the same cursors
    assert sum(len(page["members"]) for page in client.users_list(limit=100)) == 451
    with pytest.raises(SlackApiError) as exc:
        client.users_list(cursor="bm9wZTpub3Bl")
    assert error_of(exc) == "invalid_cursor"


def test_seed_5000_users_is_fast(emu: SlackEmulator, client: WebClient) -> None:
    started = time.monotonic()
    users = emu.seed_users(5000, domain="corp.test", deleted_every=100)
    assert time.monotonic() - started < 1.0
    assert len({u.id for u in users}) == 5000 and sum(u.deleted for u in users) == 50
    found = client.users_lookupByEmail(email="user04999@corp.test")["user"]
    assert found["id"] == users[4998].id


def test_users_lookup_by_email(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann", email="Ann@Example.com")
    emu.add_user("gone", email="gone@example.com", deleted=True)
    assert client.users_lookupByEmail(email="ann@example.com")["user"]["id"] == ann.id
    for email in ("gone@example.com", "nobody@example.com"):
        with pytest.raises(SlackApiError) as exc:
            client.users_lookupByEmail(email=email)
        assert error_of(exc) == "users_not_found"


def test_usergroups_users_list(emu: SlackEmulator, client: WebClient) -> None:
    a, b = emu.add_user("a"), emu.add_user("b")
    group = emu.add_usergroup([a.id, b.id], handle="approvers")
    assert group.startswith("S")
    assert client.usergroups_users_list(usergroup=group)["users"] == [a.id, b.id]
    with pytest.raises(SlackApiError) as exc:
        client.usergroups_users_list(usergroup="S404")
    assert error_of(exc) == "no_such_subteam"


# --------------------------------------------------------------------------- conversations and chat


def test_conversations_open_gives_a_stable_dm(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann")
    first = client.conversations_open(users=ann.id)["channel"]["id"]
    second = client.conversations_open(users=[ann.id], return_im=True)
    assert first.startswith("D") and second["channel"]["id"] == first and second["already_open"] is True
    assert second["channel"]["user"] == ann.id
    assert emu.dm_channel_of(ann.id) == first
    gone = emu.add_user("gone", deleted=True)
    with pytest.raises(SlackApiError) as exc:
        client.conversations_open(users=gone.id)
    assert error_of(exc) == "user_disabled"
    with pytest.raises(SlackApiError) as exc:
        client.conversations_open(users="U404")
    assert error_of(exc) == "user_not_found"


def test_post_update_and_messages_to(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann")
    dm = client.conversations_open(users=ann.id)["channel"]["id"]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    posted = client.chat_postMessage(channel=dm, text="hi", blocks=blocks)
    assert posted["channel"] == dm and posted["message"]["blocks"] == blocks
    assert posted["message"]["bot_id"] == emu.bot_id
    # a user id as channel posts to that user's DM, as Slack does
    assert client.chat_postMessage(channel=ann.id, text="again")["channel"] == dm
    admin = client.chat_postMessage(channel="CADMIN0001", text="request")
    client.chat_update(channel="CADMIN0001", ts=admin["ts"], text="approved by <@U1>")
    [updated] = emu.messages_to("CADMIN0001")
    assert (updated.text, updated.edits, updated.ts) == ("approved by <@U1>", 1, admin["ts"])
    assert [m.text for m in emu.messages_to(ann.id)] == ["hi", "again"]
    assert emu.messages_to(dm)[0].ts < emu.messages_to(dm)[1].ts
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="CADMIN0001", ts="1.000001", text="x")
    assert error_of(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning):
        client.chat_postMessage(channel="CADMIN0001", text="")
    assert error_of(exc) == "no_text"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="#general", text="x")
    assert error_of(exc) == "channel_not_found"
    # chat.postMessage goes as JSON: blocks arrive as a list, not a JSON string
    assert emu.calls("chat.postMessage")[0].args["blocks"] == blocks


def test_strict_channels(emu: SlackEmulator, client: WebClient) -> None:
    emu.strict_channels = True
    known = emu.add_channel("CKNOWN0001", "admins")
    client.chat_postMessage(channel=known, text="ok")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="CUNKNOWN01", text="x")
    assert error_of(exc) == "channel_not_found"


def test_post_message_form_encoded_blocks(emu: SlackEmulator) -> None:
    blocks = [{"type": "divider"}]
    body = f"token={TOKEN}&channel=C0000000001&blocks={json.dumps(blocks)}".encode()
    status, _, raw = post_raw(f"{emu.api_url}chat.postMessage", body, FORM_CONTENT_TYPE)
    assert status == 200 and json.loads(raw)["ok"] is True
    assert emu.messages_to("C0000000001")[0].blocks == blocks


def test_post_ephemeral(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann")
    resp = client.chat_postEphemeral(channel="C0000000001", user=ann.id, text="only you")
    assert resp["message_ts"]
    [eph] = emu.ephemerals(user=ann.id)
    assert (eph.channel, eph.text, eph.message_ts) == ("C0000000001", "only you", resp["message_ts"])
    assert emu.messages_to("C0000000001") == []
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="C0000000001", user="U404", text="x")
    assert error_of(exc) == "user_not_found"


def test_views_publish(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann")
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "tokens"}}]}
    first = client.views_publish(user_id=ann.id, view=view)["view"]
    again = client.views_publish(user_id=ann.id, view={**view, "blocks": []})["view"]
    assert first["id"] == again["id"] and first["type"] == "home"
    assert emu.home_view(ann.id) == again
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U404", view=view)
    assert error_of(exc) == "user_not_found"


def test_views_update_replaces_the_modal_like_slack(emu: SlackEmulator, client: WebClient) -> None:
    """Real Slack replaces the whole view: a submit button the new view lacks is gone."""
    confirm = {
        "type": "modal",
        "callback_id": "confirm",
        "private_metadata": "req-1",
        "title": {"type": "plain_text", "text": "Revoke token"},
        "submit": {"type": "plain_text", "text": "Revoke now"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "sure?"}}],
    }
    opened = client.views_open(trigger_id="t.1", view=confirm)["view"]
    done = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Revoke token"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Revoked."}}],
    }
    updated = client.views_update(view_id=opened["id"], view=done)["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert "submit" not in updated
    assert updated["callback_id"] == "" and updated["private_metadata"] == ""
    assert updated["close"]["text"] == "Close"
    [stored] = emu.modals()
    assert stored == updated
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id="V404", view=done)
    assert error_of(exc) == "not_found"
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=opened["id"], view=done, hash="stale-hash")
    assert error_of(exc) == "hash_conflict"


# --------------------------------------------------------------------------- files


def test_files_upload_v2_end_to_end(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann")
    dm = client.conversations_open(users=ann.id)["channel"]["id"]
    csv = b"token_id,owner\nabc,ann@example.com\n"
    resp = client.files_upload_v2(
        channel=dm, content=csv, filename="audit.csv", title="Fleet audit", initial_comment="report"
    )
    assert resp["file"]["name"] == "audit.csv" and resp["file"]["size"] == len(csv)
    [upload] = emu.uploads
    assert (upload.content, upload.length, upload.title) == (csv, len(csv), "Fleet audit")
    assert upload.completed and upload.channels == [dm] and upload.initial_comment == "report"
    assert [c.method for c in emu.calls()][-3:] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    [shared] = emu.messages_to(dm)
    assert shared.text == "report" and shared.files[0]["id"] == upload.file_id


def test_complete_upload_refuses_user_ids(emu: SlackEmulator, client: WebClient) -> None:
    ann = emu.add_user("ann")
    with pytest.raises(SlackApiError) as exc:
        client.files_upload_v2(channel=ann.id, content="x", filename="a.txt")
    assert error_of(exc) == "invalid_arguments"


def test_upload_url_answers_like_slack(emu: SlackEmulator, client: WebClient) -> None:
    resp = client.files_getUploadURLExternal(filename="x.bin", length=3)
    assert resp["upload_url"].startswith(emu.base_url)
    status, _, body = post_raw(resp["upload_url"], b"abc", "application/octet-stream")
    assert (status, body) == (200, b"OK - 3")
    status, _, _ = post_raw(f"{emu.base_url}/upload/F404", b"abc", "application/octet-stream")
    assert status == 404


# --------------------------------------------------------------------------- response_url


def test_response_url_records_posts(emu: SlackEmulator) -> None:
    url = emu.response_url("cmd-1")
    resp = WebhookClient(url).send(text="working on it", response_type="ephemeral")
    assert (resp.status_code, resp.body) == (200, "ok")
    WebhookClient(emu.response_url("cmd-2")).send(text="other", replace_original=True)
    [post] = emu.response_posts("cmd-1")
    assert post.body == {"text": "working on it", "response_type": "ephemeral"}
    assert len(emu.response_posts()) == 2
    status, _, _ = post_raw(url, b"not json", "text/plain")
    assert status == 400


# --------------------------------------------------------------------------- faults


def test_rate_limit_then_retry_handler_succeeds(emu: SlackEmulator) -> None:
    emu.rate_limit("chat.postMessage", times=1, retry_after=7)
    plain = WebClient(token=TOKEN, base_url=emu.api_url)
    with pytest.raises(SlackApiError) as exc:
        plain.chat_postMessage(channel="C0000000001", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    assert error_of(exc) == "ratelimited"

    # slack_sdk sleeps int(Retry-After) + random() seconds per retry, so keep this to one 429
    emu.rate_limit("chat.postMessage", times=1, retry_after=0)
    retrying = WebClient(
        token=TOKEN, base_url=emu.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)]
    )
    assert retrying.chat_postMessage(channel="C0000000001", text="x")["ok"] is True
    statuses = [c.status for c in emu.calls("chat.postMessage")]
    assert statuses == [429, 429, 200]
    assert len(emu.messages_to("C0000000001")) == 1  # nothing posted twice, nothing dropped


def test_rate_limit_every_nth_call(emu: SlackEmulator, client: WebClient) -> None:
    emu.rate_limit("auth.test", every=3, retry_after=0)
    outcomes = []
    for _ in range(6):
        try:
            client.auth_test()
            outcomes.append("ok")
        except SlackApiError as exc:
            outcomes.append(str(exc.response["error"]))
    assert outcomes == ["ok", "ok", "ratelimited"] * 2


def test_token_bucket_with_injected_clock() -> None:
    now = [1000.0]
    with SlackEmulator(bot_token=TOKEN, clock=lambda: now[0]) as emu:
        client = WebClient(token=TOKEN, base_url=emu.api_url)
        emu.set_rate_limit("chat.postMessage", per_minute=30, burst=2)  # one token every 2 s
        for _ in range(2):
            client.chat_postMessage(channel="C0000000001", text="x")
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C0000000001", text="x")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "2"
        now[0] += 0.5
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C0000000001", text="x")
        assert float(exc.value.response.headers["X-Emulator-Retry-After"]) == pytest.approx(1.5)
        now[0] += 1.5
        assert client.chat_postMessage(channel="C0000000001", text="x")["ok"] is True
        assert len(emu.messages_to("C0000000001")) == 3


def test_time_scale_speeds_up_buckets_and_sleep() -> None:
    # A frozen clock keeps the bucket empty however slow the machine is; sleep() is checked separately.
    frozen = [1000.0]
    with SlackEmulator(bot_token=TOKEN, time_scale=100.0, clock=lambda: frozen[0]) as emu:
        client = WebClient(token=TOKEN, base_url=emu.api_url)
        emu.set_rate_limit("chat.postMessage", per_minute=60, burst=1)
        client.chat_postMessage(channel="C0000000001", text="x")
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C0000000001", text="x")
        assert exc.value.response.headers["Retry-After"] == "1"
        frozen[0] += 0.01  # 10 ms of real time is 1 emulated second at 100x
        assert client.chat_postMessage(channel="C0000000001", text="x")["ok"] is True
        started = time.monotonic()
        emu.sleep(1.0)
        assert time.monotonic() - started < 0.5


def test_fail_and_latency(emu: SlackEmulator, client: WebClient) -> None:
    emu.fail("users.info", error="fatal_error", times=1)
    ann = emu.add_user("ann")
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user=ann.id)
    assert error_of(exc) == "fatal_error"
    assert client.users_info(user=ann.id)["ok"] is True

    emu.set_latency(0.2, method="auth.test")
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2
    emu.reset_faults()
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started < 0.2


def test_fail_upload_step(emu: SlackEmulator, client: WebClient) -> None:
    emu.fail("upload", times=1)
    with pytest.raises(Exception, match="500"):
        client.files_upload_v2(channel="C0000000001", content="x", filename="a.txt")


# --------------------------------------------------------------------------- recording


def test_concurrent_posts_are_all_recorded(emu: SlackEmulator) -> None:
    def post(i: int) -> None:
        WebClient(token=TOKEN, base_url=emu.api_url).chat_postMessage(channel="C0000000001", text=str(i))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    messages = emu.messages_to("C0000000001")
    assert len(emu.calls("chat.postMessage")) == 20 and len({m.ts for m in messages}) == 20
    assert sorted(int(m.text) for m in messages) == list(range(20))
    emu.clear()
    assert emu.calls() == [] and emu.messages_to("C0000000001") == []


# --------------------------------------------------------------------------- signing


def test_sign_round_trip_with_signature_verifier() -> None:
    body = slash_command_body("/pat", "audit", "U1", "C1", "http://127.0.0.1/response/x")
    headers = sign(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert verifier.is_valid_request(body.encode(), headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + "&x=1", headers)
    stale = sign(body, SECRET, timestamp=int(time.time()) - 6 * 60)
    assert not verifier.is_valid_request(body, stale)
    assert headers_for(event_body({"type": "app_home_opened"}), SECRET)["Content-Type"] == "application/json"


def test_payload_builders_shape() -> None:
    fields = parse_qs(slash_command_body("pat", "revoke abc", "U1", "C1", "http://r", team_id="T9"))
    assert fields["command"] == ["/pat"] and fields["text"] == ["revoke abc"] and fields["team_id"] == ["T9"]
    assert fields["response_url"] == ["http://r"] and fields["trigger_id"][0]

    payload = json.loads(
        parse_qs(block_action_body("U1", "approve", "req-1", "http://r", "C1", "1.000100"))["payload"][0]
    )
    assert payload["type"] == "block_actions" and payload["actions"][0]["value"] == "req-1"
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1.000100",
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == "1.000100" and payload["channel"]["id"] == "C1"

    home = json.loads(
        parse_qs(block_action_body("U1", "revoke", "t1", None, view={"id": "V1", "type": "home"}))["payload"][
            0
        ]
    )
    assert home["container"] == {"type": "view", "view_id": "V1"} and "response_url" not in home

    envelope = json.loads(
        event_body({"type": "app_home_opened", "user": "U1", "tab": "home"}, bot_user_id="UB")
    )
    assert envelope["type"] == "event_callback" and envelope["authorizations"][0]["user_id"] == "UB"


def test_bolt_app_verifies_signed_command_and_responds_through_emulator(emu: SlackEmulator) -> None:
    """The whole loop: signed slash command → Bolt → respond() → emulator's response_url."""
    app = App(signing_secret=SECRET, client=WebClient(token=TOKEN, base_url=emu.api_url))

    @app.command("/pat")
    def pat(ack, respond, command):
        ack()
        respond(text=f"you said {command['text']}")

    url = emu.response_url("c1")
    body = slash_command_body("/pat", "help", "U1", "C1", url)
    ok = app.dispatch(BoltRequest(body=body, headers=dict(headers_for(body, SECRET))))
    assert ok.status == 200
    emu.wait_for_calls("response_url", timeout=5)
    assert emu.response_posts("c1")[0].body["text"] == "you said help"

    stale = headers_for(body, SECRET, timestamp=int(time.time()) - 600)
    assert app.dispatch(BoltRequest(body=body, headers=dict(stale))).status == 401
