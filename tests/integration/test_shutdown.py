"""SIGTERM during an approved revoke: readiness fails at once, new work is refused, the revoke finishes,
the admin message shows the outcome, and the process exits 0 within the grace period."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import redis

from bot.sandbox.databricks_emulator import DatabricksEmulator
from bot.sandbox.slack_emulator import SlackEmulator
from bot.sandbox.slack_signing import slash_command_body
from handlers.approval_blocks import ACTION_APPROVE
from tests.fixtures.emulators import People, wait_until
from tests.fixtures.serve_process import ServeProcess, admin_text
from tests.integration.test_serve_process import free_port, serve_env

pytestmark = pytest.mark.integration

DELETE_SECONDS = 3.0
GRACE_SECONDS = 30.0  # terminationGracePeriodSeconds in the chart


def bob_token(databricks: DatabricksEmulator) -> str:
    with databricks.lock:
        return next(
            t.token_id
            for t in databricks.workspace("prod").tokens
            if t.created_by_username == "bob@example.com"
        )


def claimed(redis_url: str) -> list[str]:
    """Requests approved but without an outcome: the revoke is under way."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return list(client.zrange("{patbot}:in-doubt", 0, -1))


def test_sigterm_lets_an_approved_revoke_finish_and_exits_0(
    tmp_path: Path, slack: SlackEmulator, databricks: DatabricksEmulator, people: People, redis_url: str
) -> None:
    port = free_port()
    bot = ServeProcess(serve_env(slack, databricks, people, port, REDIS_URL=redis_url), port, tmp_path)
    bot.wait_ready()
    token_id = bob_token(databricks)
    request_id = bot.ask_to_revoke(slack, people.alice, token_id)

    databricks.set_latency("prod", DELETE_SECONDS)  # Databricks is slow to answer the DELETE
    assert bot.click(slack, people.approver, ACTION_APPROVE, request_id) == 200
    assert wait_until(lambda: claimed(redis_url), timeout=15) == [request_id]
    bot.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    assert wait_until(lambda: [1] if bot.get("/readyz")[0] == 503 else [], timeout=2), (
        "readiness fails at once"
    )
    assert bot.get("/readyz") == (503, "shutting down\n")
    late = slash_command_body("/pat", "audit", people.carol, "C1", slack.response_url("late"))
    assert bot.post(late) == 503, "no new work is accepted"

    stderr = bot.finish(timeout=GRACE_SECONDS)
    assert bot.process.returncode == 0, stderr
    assert time.monotonic() - signalled < GRACE_SECONDS
    assert databricks.count_requests("DELETE", "/api/2.0/token-management/tokens/") == 1
    with databricks.lock:
        assert all(t.token_id != token_id for t in databricks.workspace("prod").tokens), "revoked"
    text = admin_text(slack)
    assert "Revoked." in text and ACTION_APPROVE not in text, "the admin message shows the outcome"
    assert claimed(redis_url) == [], "the outcome is recorded: nothing in doubt"
    assert slack.response_posts("late") == []
    assert "Traceback" not in stderr
