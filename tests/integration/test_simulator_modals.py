"""The simulator does with a bot's answers what Slack does: modal acks replace the view, typed text is
escaped. Driven over HTTP against a stand-in bot that records what it gets and answers what it is told."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient

from bot.sandbox.simulator import Person, Simulator
from bot.sandbox.slack_emulator import SlackEmulator

pytestmark = pytest.mark.integration


class StandInBot:
    """Records each request's form or JSON payload; answers with `reply` (JSON) or an empty 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.reply: dict[str, Any] | None = None
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                bot.received.append(json.loads(form["payload"]) if "payload" in form else form)
                body = json.dumps(bot.reply).encode() if bot.reply is not None else b""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def world() -> Iterator[tuple[SlackEmulator, Simulator, StandInBot, str]]:
    bot = StandInBot()
    with SlackEmulator() as slack:
        alice = slack.add_user("alice", email="alice@example.com").id
        simulator = Simulator(
            slack,
            bot_url=bot.url,
            signing_secret="secret",
            admin_channel="C0ADMIN01",
            admin_channel_name="pat-approvals",
            people=[Person(alice, "owner")],
        )
        simulator.mount()
        try:
            yield slack, simulator, bot, alice
        finally:
            bot.close()


def open_modal(slack: SlackEmulator, simulator: Simulator, user: str) -> str:
    trigger = simulator._trigger(user)  # what a click hands the bot
    view = {
        "type": "modal",
        "callback_id": "confirm",
        "private_metadata": "req-1",
        "title": {"type": "plain_text", "text": "Revoke token"},
        "submit": {"type": "plain_text", "text": "Revoke now"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Revoke it?"}}],
    }
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    return str(client.views_open(trigger_id=trigger, view=view)["view"]["id"])


def test_an_update_ack_replaces_the_modal_whole(
    world: tuple[SlackEmulator, Simulator, StandInBot, str],
) -> None:
    slack, simulator, bot, alice = world
    view_id = open_modal(slack, simulator, alice)
    bot.reply = {
        "response_action": "update",
        "view": {
            "type": "modal",
            "title": {"type": "plain_text", "text": "Revoke token"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Revoking…"}}],
        },
    }
    simulator.submit({"user": alice, "view_id": view_id})
    assert bot.received[-1]["type"] == "view_submission"
    modal = simulator.state(alice)["modal"]
    assert modal["id"] == view_id and "Revoking…" in json.dumps(modal["blocks"], ensure_ascii=False)
    assert "submit" not in modal, "a view the ack left without a submit button has none"
    assert modal["callback_id"] == "" and modal["private_metadata"] == ""
    assert modal["close"]["text"] == "Close"


def test_typed_command_text_reaches_the_bot_escaped_as_slack_sends_it(
    world: tuple[SlackEmulator, Simulator, StandInBot, str],
) -> None:
    _, simulator, bot, alice = world
    simulator.run_command({"user": alice, "text": "/pat revoke abc *urgent* &amp; <b> @alice"})
    sent = bot.received[-1]
    assert sent["command"] == "/pat"
    assert sent["text"] == f"revoke abc *urgent* &amp;amp; &lt;b&gt; <@{alice}|alice>"
