"""A crash between the claim and the outcome: the request is in doubt, listed by `patbot log --in-doubt`,
counted in /metrics, shown on its admin message at the next start, and never retried by itself."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from bot.sandbox.databricks_emulator import DatabricksEmulator
from bot.sandbox.slack_emulator import SlackEmulator
from bot.settings import load_settings
from entrypoints.bootstrap import Application
from entrypoints.cli import main
from handlers.approval_blocks import ACTION_APPROVE
from tests.fixtures.emulators import ADMIN_CHANNEL, People, wait_until
from tests.fixtures.serve_process import ServeProcess, admin_text
from tests.integration.test_serve_process import free_port, serve_env

pytestmark = pytest.mark.integration

TOKENS = "/api/2.0/token-management/tokens/"


def bob_token(databricks: DatabricksEmulator) -> str:
    with databricks.lock:
        tokens = databricks.workspace("prod").tokens
        return next(t.token_id for t in tokens if t.created_by_username == "bob@example.com")


def claimed(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return list(client.zrange("{patbot}:in-doubt", 0, -1))


def patbot_log(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "log", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def gauge(metrics: str, name: str) -> float:
    (line,) = [x for x in metrics.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


def test_a_crash_between_claim_and_outcome_leaves_the_request_in_doubt_and_visible(
    tmp_path: Path, slack: SlackEmulator, databricks: DatabricksEmulator, people: People, redis_url: str
) -> None:
    port = free_port()
    env = serve_env(slack, databricks, people, port, REDIS_URL=redis_url)
    bot = ServeProcess(env, port, tmp_path)
    bot.wait_ready()
    token_id = bob_token(databricks)
    request_id = bot.ask_to_revoke(slack, people.alice, token_id)

    databricks.set_latency("prod", 10.0)  # the DELETE hangs: the process dies before Databricks answers
    assert bot.click(slack, people.approver, ACTION_APPROVE, request_id) == 200
    assert wait_until(lambda: claimed(redis_url), timeout=15) == [request_id]
    bot.finish(kill=True)  # SIGKILL: no outcome is recorded
    databricks.set_latency("prod", 0.0)

    listed = patbot_log(env, tmp_path, "--in-doubt")
    assert listed.returncode == 0, listed.stderr
    assert request_id in listed.stdout and "revoke" in listed.stdout
    assert f"Approved by {people.approver}" in listed.stdout, "what was done"
    assert f"Not known: whether token {token_id[:12]}" in listed.stdout, "what was not"
    out = io.StringIO()
    parts = Application(load_settings(None, REDIS_URL=redis_url, DATABRICKS_HOST=databricks.hosts[0]))
    assert main(["log", "--in-doubt", "--format", "json"], parts=parts, out=out) == 0
    as_json = json.loads(out.getvalue())
    assert [r["request"] for r in as_json] == [request_id] and as_json[0]["approver"] == people.approver

    edits_before = slack.messages_to(ADMIN_CHANNEL)[0].edits
    restarted = ServeProcess(env, port, tmp_path)
    try:
        restarted.wait_ready()
        status, metrics = restarted.get("/metrics")
        assert status == 200
        assert gauge(metrics, "patbot_in_doubt_requests") == 1.0
        assert gauge(metrics, "patbot_pending_requests") == 0.0
        assert 'patbot_build_info{version="' in metrics and "process_start_time_seconds" in metrics
        wait_until(
            lambda: [1] if slack.messages_to(ADMIN_CHANNEL)[0].edits > edits_before else [], timeout=15
        )
        text = admin_text(slack)
        assert "In doubt" in text and f"whether token {token_id[:12]}" in text and ACTION_APPROVE not in text
    finally:
        stderr = restarted.finish()
    assert restarted.process.returncode == 0, stderr
    assert claimed(redis_url) == [request_id], "never retried by itself"
    assert databricks.count_requests("DELETE", TOKENS) <= 1, "the one DELETE, if it ever landed"
