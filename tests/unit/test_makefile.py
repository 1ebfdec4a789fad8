"""`make demo` installs only what the demo runs; `make test` adds the dev tools. Checked with `make -n`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(target: str, tmp_path: Path, **variables: str) -> str:
    """The commands `make <target>` would run for a fresh clone (a virtualenv that does not exist yet)."""
    args = ["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"]
    args += [f"{k}={v}" for k, v in variables.items()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_demo_installs_the_runtime_only(tmp_path: Path) -> None:
    commands = dry_run("demo", tmp_path)
    assert "pip install" in commands and "-e ." in commands
    assert "[dev]" not in commands, "a demo needs no mypy, ruff, pytest or playwright"
    assert "patbot demo" in commands


def test_make_test_adds_the_dev_extras(tmp_path: Path) -> None:
    commands = dry_run("test", tmp_path)
    assert "'.[dev]'" in commands and "pytest" in commands


def test_a_python_older_than_3_11_is_named_before_anything_is_installed(tmp_path: Path) -> None:
    commands = dry_run("demo", tmp_path)
    check = commands.index("3.11")
    assert check < commands.index("-m venv"), "the version check comes first"


def test_the_python_check_names_the_version_needed() -> None:
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "check-python", "PYTHON=false"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "needs Python 3.11 or newer" in done.stderr
