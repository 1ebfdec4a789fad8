"""What `patbot` loads before it can answer: `--help` and configuration errors need no SDK, Redis or Slack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("databricks.sdk", "redis", "slack_sdk", "slack_bolt", "matplotlib", "waitress", "bot.sandbox")


def loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    probe = (
        "import io, contextlib, json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PATBOT_", "SLACK_"))}
    clean.update(env or {})
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=clean, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.splitlines()[-1]))


def test_help_loads_nothing_heavy() -> None:
    code = (
        "from entrypoints.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0"
    )
    assert loaded_after(code) == []


def test_a_configuration_error_loads_nothing_heavy() -> None:
    code = (
        "from entrypoints.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['audit']) == 2"
    )
    assert loaded_after(code) == []


def test_the_adapter_loads_the_client_core_not_every_service() -> None:
    loaded = loaded_after("import bot.databricks")
    assert "databricks.sdk.core" in loaded
    # The audit's reads go through `bot.read_client`; a service module loads when a write needs it.
    assert "databricks.sdk.service.settings" not in loaded and "databricks.sdk.service.oauth2" not in loaded
    assert "databricks.sdk.service.catalog" not in loaded and "databricks.sdk.service.jobs" not in loaded


def test_the_whole_sdk_package_still_imports_after_the_adapter() -> None:
    code = (
        "import bot.databricks\n"
        "from databricks.sdk import WorkspaceClient, errors\n"
        "from databricks.sdk.service.catalog import CatalogInfo\n"
        "assert WorkspaceClient.__name__ == 'WorkspaceClient' and errors.NotFound and CatalogInfo"
    )
    assert "databricks.sdk.service.catalog" in loaded_after(code)
