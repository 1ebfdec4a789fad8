"""A fresh clone's README and docs/ carry what a user needs, and point only at files the clone has."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.governance.labels import FINDING_LABELS
from bot.governance.models import Finding

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)|`(\.\./[^`]+)`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_exists_in_the_clone(doc: Path) -> None:
    for match in LINK.finditer(doc.read_text(encoding="utf-8")):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} points outside the repository: {target}"
        assert path.exists(), f"{doc.name} points at a missing file: {target}"


def test_the_readme_names_the_python_it_needs() -> None:
    needed = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = needed.removeprefix(">=")
    assert f"Python {version} or newer" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_usage_guide_explains_every_finding_in_the_words_slack_shows() -> None:
    usage = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    for finding in Finding:
        assert f"| `{finding.value}` | {FINDING_LABELS[finding]} |" in usage, finding


def test_the_usage_guide_lists_every_pat_subcommand() -> None:
    from handlers.parsing import SUBCOMMANDS

    usage = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    for name in SUBCOMMANDS:
        assert f"`/pat {name}" in usage or (name == "help" and "`/pat help`" in usage), name
