"""`patbot serve` as a real process: configuration errors, health endpoints, a signed command, clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator
from bot.sandbox.slack_emulator import SlackEmulator
from bot.sandbox.slack_signing import headers_for, slash_command_body
from tests.fixtures.emulators import BOT_TOKEN, SIGNING_SECRET, People, wait_until

pytestmark = pytest.mark.integration


def clean_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABRICKS_", "PATBOT_", "SLACK_", "REDIS_"))
    }
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(
    slack: SlackEmulator, databricks: DatabricksEmulator, people: People, port: int, **extra: str
) -> dict[str, str]:
    """The environment of a `patbot serve` wired to both emulators."""
    return clean_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PATBOT_SLACK_API_URL=slack.api_url,
        PATBOT_ADMIN_CHANNEL="CADMIN0001",
        PATBOT_APPROVERS=people.approver,
        PATBOT_WORKSPACES=",".join(databricks.hosts),
        DATABRICKS_TOKEN=DEFAULT_ADMIN_TOKEN,
        PATBOT_SCHEDULER="off",
        PORT=str(port),
        **extra,
    )


def test_serve_without_slack_settings_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "serve"],
        capture_output=True,
        text=True,
        env=clean_env(DATABRICKS_HOST="https://x"),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "patbot: SLACK_BOT_TOKEN is required but not set"


def test_serve_answers_health_and_a_signed_command(
    tmp_path: Path, slack: SlackEmulator, databricks: DatabricksEmulator, people: People
) -> None:
    port = free_port()
    env = serve_env(slack, databricks, people, port)
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> list[int]:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as r:
                    return [r.status]
            except OSError:
                return []

        assert wait_until(healthy, timeout=30) == [200]
        with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
            assert r.status == 200
        body = slash_command_body("/pat", "audit", people.alice, "C1", slack.response_url("proc"))
        request = urllib.request.Request(
            base + "/slack/events",
            data=body.encode(),
            headers=headers_for(body, SIGNING_SECRET),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200
        posts = wait_until(lambda: slack.response_posts("proc"), timeout=30)
        assert "dbt prod" in json.dumps(posts[0].body)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    assert "embedded in-memory store" in stderr, "the warning about REDIS_URL is logged"
    assert DEFAULT_ADMIN_TOKEN not in stderr and BOT_TOKEN not in stderr
    assert process.returncode == 0, "SIGTERM stops the process cleanly"


def test_serve_with_a_refused_bot_token_exits_2_naming_the_variable(
    tmp_path: Path, slack: SlackEmulator, people: People
) -> None:
    env = clean_env(
        SLACK_BOT_TOKEN="xoxb-wrong",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PATBOT_SLACK_API_URL=slack.api_url,
        PATBOT_ADMIN_CHANNEL="CADMIN0001",
        PATBOT_APPROVERS=people.approver,
        DATABRICKS_HOST="https://x",
        PATBOT_SCHEDULER="off",
        PORT=str(free_port()),
    )
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "serve"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1] == "patbot: SLACK_BOT_TOKEN: Slack refused it (invalid_auth)"
    )
    assert "Traceback" not in result.stderr and "xoxb-wrong" not in result.stderr
