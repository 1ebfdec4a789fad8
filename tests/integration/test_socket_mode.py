"""Socket Mode: the emulated endpoint against slack_sdk's builtin client, and `patbot serve --socket`
as a real process: hello, envelopes and their acks, lazy answers, health endpoints, a refused token."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator
from bot.sandbox.slack_emulator import SlackEmulator
from bot.sandbox.slack_signing import event_body, slash_command_body
from tests.fixtures.emulators import BOT_TOKEN, People, wait_until
from tests.integration.test_serve_process import free_port, serve_env

pytestmark = pytest.mark.integration

APP_TOKEN = "xapp-test"
ACK_DEADLINE = 3.0  # seconds: Slack retries an envelope that is not acked in time


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    """Overrides the shared fixture (and so the one `people` uses): the same emulator, with Socket Mode."""
    with SlackEmulator(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as emulator:
        yield emulator


# --------------------------------------------------------------------------- the emulated endpoint


@pytest.fixture
def client(slack: SlackEmulator) -> Iterator[SocketModeClient]:
    """slack_sdk's builtin client (what Bolt's SocketModeHandler uses), not yet connected."""
    sm = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(base_url=slack.api_url), ping_interval=1)
    try:
        yield sm
    finally:
        sm.auto_reconnect_enabled = False
        slack.socket_drop(code=1000)  # a close frame ends the client's read loop at once
        sm.close()


def test_apps_connections_open_takes_only_the_app_token(slack: SlackEmulator) -> None:
    web = WebClient(base_url=slack.api_url)
    url = web.apps_connections_open(app_token=APP_TOKEN)["url"]
    assert url.startswith("ws://127.0.0.1:") and "/link/?ticket=" in url
    for token, error in (("xapp-wrong", "invalid_auth"), (BOT_TOKEN, "not_allowed_token_type")):
        with pytest.raises(SlackApiError) as refused:
            web.apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error
    with pytest.raises(SlackApiError) as wrong_type:
        WebClient(token=APP_TOKEN, base_url=slack.api_url).auth_test()
    assert wrong_type.value.response["error"] == "not_allowed_token_type"
    assert WebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()["ok"]
    assert [c.error for c in slack.calls("apps.connections.open")] == [
        None,
        "invalid_auth",
        "not_allowed_token_type",
    ]


def test_tickets_connect_once_and_only_as_websockets(slack: SlackEmulator) -> None:
    url = WebClient(base_url=slack.api_url).apps_connections_open(app_token=APP_TOKEN)["url"]
    host, port = url.split("/")[2].split(":")
    path = "/" + url.split("/", 3)[3]

    def handshake(target: str, upgrade: bool = True) -> str:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            headers = "Upgrade: websocket\r\nConnection: Upgrade\r\n" if upgrade else ""
            sock.sendall(
                f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            return sock.recv(4096).decode("latin-1")

    assert handshake(path, upgrade=False).startswith("HTTP/1.1 400 ")
    first = handshake(path)
    assert first.startswith("HTTP/1.1 101 ")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in first  # RFC 6455's own example
    assert handshake(path).startswith("HTTP/1.1 401 "), "a ticket is used once"


def test_builtin_client_gets_hello_envelopes_and_its_acks_are_recorded(
    slack: SlackEmulator, client: SocketModeClient
) -> None:
    messages: list[dict[str, Any]] = []
    requests: list[SocketModeRequest] = []
    client.message_listeners.append(lambda _client, message, _raw: messages.append(message))

    def answer(sm: Any, req: SocketModeRequest) -> None:
        requests.append(req)
        payload = {"text": f"echo {req.payload.get('text')}"} if req.accepts_response_payload else None
        sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=payload))

    client.socket_mode_request_listeners.append(answer)
    assert not slack.socket_connected()
    with pytest.raises(RuntimeError, match="no app is connected"):
        slack.socket_send("slash_commands", {"text": "lost"})
    client.connect()
    slack.wait_for_socket()
    assert slack.socket_connected()

    command = slack.socket_send("slash_commands", {"command": "/pat", "text": "x" * 70_000})
    event = slack.socket_send("events_api", {"type": "event_callback", "event": {"type": "app_home_opened"}})
    action = slack.socket_send("interactive", {"type": "block_actions", "actions": []})
    submission = slack.socket_send("interactive", {"type": "view_submission", "view": {}})
    acks = {eid: slack.wait_for_socket_ack(eid) for eid in (command, event, action, submission)}

    assert acks[command].payload == {"text": "echo " + "x" * 70_000}, "a 70 kB envelope and reply"
    assert acks[event].payload is None and acks[action].payload is None
    assert acks[submission].payload == {"text": "echo None"}
    assert messages[0]["type"] == "hello" and messages[0]["connection_info"] == {"app_id": "A1"}
    sent = {e.envelope_id: e for e in slack.socket_envelopes()}
    assert [sent[e].accepts_response_payload for e in (command, event, action, submission)] == [
        True,
        False,
        False,
        True,
    ]
    by_id = {r.envelope_id: r for r in requests}
    assert by_id[event].retry_attempt == 0 and by_id[event].retry_reason == ""
    assert by_id[command].type == "slash_commands" and by_id[action].payload["type"] == "block_actions"
    session = client.current_session
    assert session is not None
    assert wait_until(lambda: [t for t in [session.last_ping_pong_time] if t]), "pings are answered"
    slack.clear()
    assert slack.socket_acks() == [] and slack.socket_envelopes() == []


def test_disconnect_and_dropped_connections_make_the_client_reconnect(
    slack: SlackEmulator, client: SocketModeClient
) -> None:
    client.socket_mode_request_listeners.append(
        lambda sm, req: sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
    )
    client.connect()
    slack.wait_for_socket()
    slack.socket_disconnect()  # Slack's "refresh_requested"
    slack.wait_for_socket(opened=2)
    slack.socket_drop(code=1001)  # the server goes away: the client opens a new connection
    slack.wait_for_socket(opened=3, timeout=10)
    assert len(slack.calls("apps.connections.open")) == 3
    envelope = slack.socket_send("events_api", {"type": "event_callback", "event": {"type": "x"}})
    assert slack.wait_for_socket_ack(envelope).connection == slack.socket_envelopes()[-1].connection


def test_socket_mode_needs_an_app_token() -> None:
    with SlackEmulator(bot_token=BOT_TOKEN) as emulator:
        assert not emulator.socket_connected()
        with pytest.raises(RuntimeError, match="app_token"):
            emulator.socket_send("slash_commands", {})
        with pytest.raises(SlackApiError) as refused:
            WebClient(base_url=emulator.api_url).apps_connections_open(app_token=APP_TOKEN)
        assert refused.value.response["error"] == "invalid_auth"


# --------------------------------------------------------------------------- patbot serve --socket


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def socket_env(
    slack: SlackEmulator, databricks: DatabricksEmulator, people: People, port: int, app_token: str
) -> dict[str, str]:
    return serve_env(slack, databricks, people, port, SLACK_APP_TOKEN=app_token)


def test_serve_socket_mode_acks_envelopes_answers_lazily_and_stops_on_sigterm(
    tmp_path: Path, slack: SlackEmulator, databricks: DatabricksEmulator, people: People
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--socket"],
        env=socket_env(slack, databricks, people, port, APP_TOKEN),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        slack.wait_for_socket(timeout=30)
        assert [c.error for c in slack.calls("apps.connections.open")] == [None]
        assert get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
        assert get(f"http://127.0.0.1:{port}/readyz")[0] == 200

        form = slash_command_body("/pat", "audit", people.alice, "C1", slack.response_url("sock"))
        command = slack.socket_send("slash_commands", dict(parse_qsl(form)))
        ack = slack.wait_for_socket_ack(command, timeout=10)
        assert ack.payload is None, "/pat acks with an empty body and answers later"
        sent = next(e for e in slack.socket_envelopes() if e.envelope_id == command)
        assert ack.time - sent.time < ACK_DEADLINE
        posts = wait_until(lambda: slack.response_posts("sock"), timeout=30)
        answer = json.dumps(posts[0].body)
        assert posts[0].body["response_type"] == "ephemeral"
        assert "alice@example.com" in answer and "dbt prod" in answer and "bob@example.com" not in answer

        home = json.loads(
            event_body({"type": "app_home_opened", "user": people.bob, "tab": "home", "channel": "D1"})
        )
        event = slack.socket_send("events_api", home)
        assert slack.wait_for_socket_ack(event, timeout=10).payload is None
        views = wait_until(lambda: [v for v in [slack.home_view(people.bob)] if v], timeout=30)
        bob_tokens = [
            t.token_id
            for ws in databricks.names
            for t in databricks.workspace(ws).tokens
            if t.created_by_username == "bob@example.com"
        ]
        assert bob_tokens and all(tid[:12] in json.dumps(views[0]) for tid in bob_tokens)

        assert get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n"), "still healthy"
        assert len(slack.socket_acks()) == 2, "each envelope acked once"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0, "SIGTERM stops the process cleanly"
    assert wait_until(lambda: [True] if not slack.socket_connected() else [], timeout=10)
    assert "Traceback" not in stderr
    assert APP_TOKEN not in stderr and BOT_TOKEN not in stderr and DEFAULT_ADMIN_TOKEN not in stderr


def test_serve_socket_mode_with_a_refused_app_token_exits_2_naming_the_variable(
    tmp_path: Path, slack: SlackEmulator, databricks: DatabricksEmulator, people: People
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--socket"],
        env=socket_env(slack, databricks, people, free_port(), "xapp-wrong"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert time.monotonic() - started < 20, "no retry loop"
    assert (
        result.stderr.strip().splitlines()[-1] == "patbot: SLACK_APP_TOKEN: Slack refused it (invalid_auth)"
    )
    assert [c.error for c in slack.calls("apps.connections.open")] == ["invalid_auth"], "asked once"
    assert not slack.socket_connected()
    assert "Traceback" not in result.stderr
    assert "xapp-wrong" not in result.stderr and BOT_TOKEN not in result.stderr
