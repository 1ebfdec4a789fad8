"""The core knows no Slack: no bot/ module loads slack_bolt, slack_sdk, handlers/ or entrypoints/."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import bot

# The emulators stand in for Slack and Databricks in tests and the demo; they import no surface either.
FORBIDDEN = ("slack_bolt", "slack_sdk", "handlers", "entrypoints")


def core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(bot.__path__, "bot."))


def test_core_modules_do_not_load_slack_or_the_surfaces() -> None:
    assert {"bot.approvals", "bot.operations", "bot.flows.decide", "bot.governance.audit"} <= set(
        core_modules()
    )
    code = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
