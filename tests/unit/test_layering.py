"""The core knows no Slack: no bot/ module but the entry points loads slack_bolt or handlers/."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import bot

ENTRY_POINTS = {"bot.cli", "bot.demo", "bot.weekly_cli", "bot.sandbox.simulator"}


def core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(bot.__path__, "bot.") if m.name not in ENTRY_POINTS)


def test_core_modules_do_not_load_slack_bolt_or_handlers() -> None:
    assert {"bot.approvals", "bot.operations", "bot.governance.audit", "bot.weekly.reminders"} <= set(
        core_modules()
    )
    code = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'slack_bolt' or m.startswith(('slack_bolt.', 'handlers')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
