"""PATBOT_REQUIRE_SCOPES: on by default, a boolean, and one line naming it when invalid."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PATBOT_REQUIRE_SCOPES", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_scopes_are_required_by_default() -> None:
    assert load_settings().require_scopes is True


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("0", False), ("true", True), ("yes", True)]
)
def test_require_scopes_reads_booleans(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("PATBOT_REQUIRE_SCOPES", value)
    assert load_settings().require_scopes is expected


def test_an_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATBOT_REQUIRE_SCOPES", "sometimes")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.user_message.startswith("PATBOT_REQUIRE_SCOPES: Input should be a valid boolean")
    assert "\n" not in info.value.user_message
