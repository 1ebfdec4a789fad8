"""`patbot audit`: formats, filters, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator, seed_fleet
from entrypoints.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_patbot(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PATBOT_", "SLACK_"))}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=120,
        cwd=cwd or ROOT,
    )


def fleet_env(databricks: DatabricksEmulator) -> dict[str, str]:
    return {
        "PATBOT_WORKSPACES": ",".join(databricks.hosts),
        "DATABRICKS_TOKEN": DEFAULT_ADMIN_TOKEN,
        "PATBOT_DATABRICKS_TIMEOUT_SECONDS": "2",
    }


def test_json_carries_every_field(databricks: DatabricksEmulator, tmp_path: Path) -> None:
    result = run_patbot("audit", "--format", "json", env=fleet_env(databricks), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["tokens"]) == 30 and len(doc["workspaces"]) == 3
    token = doc["tokens"][0]
    assert set(token) == {
        "workspace",
        "token_id",
        "owner",
        "principal_type",
        "comment",
        "created",
        "expires",
        "last_used",
        "findings",
        "days_until_auto_revoke",
        "scopes",
        "used_scopes",
    }
    assert token["created"].endswith("Z")
    ws = doc["workspaces"][0]
    assert {"tokens_enabled", "max_token_lifetime_days", "error"} <= set(ws)
    assert DEFAULT_ADMIN_TOKEN not in result.stdout + result.stderr


def test_csv_and_owner_filter(databricks: DatabricksEmulator, tmp_path: Path) -> None:
    result = run_patbot(
        "audit", "--format", "csv", "--owner", "bob@example.com", env=fleet_env(databricks), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {r["owner"] for r in rows} == {"bob@example.com"}
    assert all(
        r["workspace"] in {"prod", "staging", "analytics"} or r["workspace"].startswith("127.0.0.1")
        for r in rows
    )


def test_table_is_the_default(databricks: DatabricksEmulator, tmp_path: Path) -> None:
    result = run_patbot("audit", env=fleet_env(databricks), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("WORKSPACE") and "30 tokens in 3 workspaces" in result.stdout


def test_fail_on_exits_1_when_a_finding_exists(databricks: DatabricksEmulator, tmp_path: Path) -> None:
    env = fleet_env(databricks)
    assert run_patbot("audit", "--fail-on", "non_expiring,stale", env=env, cwd=tmp_path).returncode == 1
    only_carol = run_patbot(
        "audit", "--owner", "nobody@example.com", "--fail-on", "stale", env=env, cwd=tmp_path
    )
    assert only_carol.returncode == 0


def test_bad_fail_on_value_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_patbot(
        "audit", "--fail-on", "stale,bogus", env={"DATABRICKS_HOST": "https://x"}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "unknown finding bogus" in result.stderr and "Traceback" not in result.stderr


def test_missing_configuration_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = run_patbot("audit", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "patbot: DATABRICKS_HOST is required but not set (or PATBOT_WORKSPACES, or DATABRICKS_ACCOUNT_ID)"
    ]


def test_invalid_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = run_patbot(
        "audit", env={"DATABRICKS_HOST": "https://x", "PATBOT_STALE_DAYS": "soon"}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("patbot: PATBOT_STALE_DAYS:") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_failed_workspace_exits_2_but_prints_the_rest(databricks: DatabricksEmulator, tmp_path: Path) -> None:
    databricks.fail("staging", "/api/2.0/token-management/tokens", 403)
    result = run_patbot("audit", "--format", "json", env=fleet_env(databricks), cwd=tmp_path)
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert len(doc["tokens"]) == 20
    assert (
        "could not read staging" not in result.stderr
    )  # labels are hosts without names in PATBOT_WORKSPACES
    assert "permission denied" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_workspace_fails_fast(databricks: DatabricksEmulator, tmp_path: Path) -> None:
    databricks.take_down("analytics")
    result = run_patbot("audit", env=fleet_env(databricks), cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot connect" in result.stderr


def test_workspace_selector_and_unknown_workspace(databricks: DatabricksEmulator, tmp_path: Path) -> None:
    env = fleet_env(databricks)
    host = databricks.host_of("prod")
    result = run_patbot("audit", "--format", "json", "--workspace", host, env=env, cwd=tmp_path)
    assert result.returncode == 0 and len(json.loads(result.stdout)["workspaces"]) == 1
    unknown = run_patbot("audit", "--workspace", "nope.example.com", env=env, cwd=tmp_path)
    assert unknown.returncode == 2 and "No governed workspace matches 'nope.example.com'" in unknown.stderr


def test_account_mode_discovers_running_workspaces(databricks: DatabricksEmulator, now) -> None:
    from bot.services import build_fleet
    from bot.settings import Settings
    from entrypoints.bootstrap import Application

    with databricks.lock:
        databricks.workspace("analytics").status = "PROVISIONING"
    settings = Settings(
        _env_file=None,
        databricks_account_id=databricks.account_id,  # type: ignore[call-arg]
        databricks_account_host=databricks.account_host,
        databricks_token=DEFAULT_ADMIN_TOKEN,
        databricks_timeout_seconds=2,
    )
    parts = Application(settings).replace(
        fleet=build_fleet(settings, host_resolver=databricks.host_for_deployment)
    )
    out = io.StringIO()
    code = main(["audit", "--format", "json"], parts=parts, out=out)
    assert code == 0
    names = [ws["workspace"] for ws in json.loads(out.getvalue())["workspaces"]]
    assert names == ["prod", "staging"]


class _Recorder(io.StringIO):
    """stdout that notes, at each write, which workspaces have had their tokens listed so far."""

    def __init__(self, databricks: DatabricksEmulator) -> None:
        super().__init__()
        self.databricks = databricks
        self.listed_at_write: list[set[str]] = []

    def write(self, text: str) -> int:
        if "token_id" in text:
            listed = {
                r.workspace
                for r in self.databricks.requests
                if r.path == "/api/2.0/token-management/tokens" and r.status == 200
            }
            self.listed_at_write.append(listed)
        return super().write(text)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_output_streams_while_a_slow_workspace_is_still_being_read(
    databricks: DatabricksEmulator, fmt: str
) -> None:
    from bot.settings import Settings
    from entrypoints.bootstrap import Application

    databricks.set_latency("analytics", 1.5)
    settings = Settings(
        _env_file=None,
        workspaces=",".join(databricks.hosts),  # type: ignore[call-arg]
        databricks_token=DEFAULT_ADMIN_TOKEN,
    )
    out = _Recorder(databricks)
    code = main(["audit", "--format", fmt], parts=Application(settings), out=out)
    assert code == 0
    assert out.listed_at_write and "analytics" not in out.listed_at_write[0], (
        "the first workspace's tokens are written before the slow one answers"
    )
    if fmt == "json":
        doc = json.loads(out.getvalue())
        assert len(doc["tokens"]) == 30 and sum(doc["totals"].values()) > 0
        assert [ws["token_count"] for ws in doc["workspaces"]] == [10, 10, 10]
    else:
        assert len(list(csv.DictReader(io.StringIO(out.getvalue())))) == 30


def test_a_large_report_is_written_whole_before_the_quick_exit(tmp_path: Path) -> None:
    """`patbot audit` leaves without the interpreter's teardown: everything written must be out first."""
    from datetime import UTC, datetime

    from bot.sandbox.databricks_emulator import seed_fleet

    with DatabricksEmulator(seed_fleet(2, 3000, now=datetime.now(UTC))) as big:
        csv_run = run_patbot("audit", "--format", "csv", env=fleet_env(big), cwd=tmp_path)
        json_run = run_patbot(
            "audit", "--format", "json", "--fail-on", "stale", env=fleet_env(big), cwd=tmp_path
        )
    assert csv_run.returncode == 0 and len(csv_run.stdout.splitlines()) == 1 + 6000
    assert json_run.returncode == 1 and len(json.loads(json_run.stdout)["tokens"]) == 6000


def test_a_fleet_wider_than_the_open_files_limit_is_read_whole(now: datetime, tmp_path: Path) -> None:
    """60 workspaces read at once hold about 180 sockets; a shell allowing 128 open files must not fail them."""
    import resource

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    with DatabricksEmulator(seed_fleet(60, 10, now=now), keep_alive=True) as databricks:
        databricks.set_latency(None, 0.3)  # every workspace's reads in flight together
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PATBOT_", "SLACK_"))}
        env.update(
            fleet_env(databricks), PATBOT_DATABRICKS_TIMEOUT_SECONDS="1"
        )  # no time to wait for a socket
        result = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", "audit", "--format", "csv"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
            preexec_fn=low_limit,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.splitlines()) == 1 + 60 * 10
