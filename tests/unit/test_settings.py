"""Settings: defaults, parsing, and one line naming the variable for every invalid value."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings

_PATBOT_VARS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "PATBOT_SLACK_API_URL",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_ACCOUNT_ID",
    "PATBOT_WORKSPACES",
    "REDIS_URL",
    "PATBOT_ADMIN_CHANNEL",
    "PATBOT_APPROVERS",
    "PATBOT_STALE_DAYS",
    "PATBOT_MAX_LIFETIME_DAYS",
    "PATBOT_ROTATION_DAYS",
    "PATBOT_APPROVAL_TTL_HOURS",
    "PATBOT_REMINDER_CRON",
    "PATBOT_TIMEZONE",
    "PATBOT_SECRET_SCOPE",
    "PATBOT_SCHEDULER",
    "PORT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in _PATBOT_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_match_the_contract() -> None:
    s = load_settings()
    assert (s.stale_days, s.max_lifetime_days, s.rotation_days) == (30, 90, 90)
    assert s.approval_ttl_hours == 24
    assert (s.reminder_cron, s.timezone, s.scheduler, s.port) == ("0 9 * * mon", "UTC", "on", 3000)
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.redis_url is None and s.secret_scope is None


def test_lists_and_hosts_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATBOT_WORKSPACES", "adb-1.azuredatabricks.net, https://b.cloud.databricks.com/")
    monkeypatch.setenv("PATBOT_APPROVERS", "U123ABC,W456DEF, S789GHI")
    monkeypatch.setenv("PATBOT_APPROVAL_TTL_HOURS", "0.25")
    s = load_settings()
    assert s.workspaces == ["https://adb-1.azuredatabricks.net", "https://b.cloud.databricks.com"]
    assert s.approvers == ["U123ABC", "W456DEF", "S789GHI"]
    assert s.approval_ttl_hours == 0.25


def test_secrets_directory_is_read(tmp_path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "SLACK_BOT_TOKEN").write_text("xoxb-from-file")
    s = load_settings(secrets)
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-from-file"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PATBOT_STALE_DAYS", "abc", "PATBOT_STALE_DAYS: Input should be a valid integer"),
        ("PATBOT_STALE_DAYS", "0", "PATBOT_STALE_DAYS: Input should be greater than or equal to 1"),
        (
            "PATBOT_MAX_LIFETIME_DAYS",
            "731",
            "PATBOT_MAX_LIFETIME_DAYS: Input should be less than or equal to 730",
        ),
        ("PATBOT_APPROVAL_TTL_HOURS", "-1", "PATBOT_APPROVAL_TTL_HOURS: Input should be greater than 0"),
        ("PATBOT_APPROVERS", "U123,bob", "PATBOT_APPROVERS: expected Slack user"),
        ("PATBOT_ADMIN_CHANNEL", "#admins", "PATBOT_ADMIN_CHANNEL: expected a Slack channel ID"),
        ("PATBOT_TIMEZONE", "Mars/Olympus", "PATBOT_TIMEZONE: unknown time zone"),
        ("PATBOT_REMINDER_CRON", "every monday", "PATBOT_REMINDER_CRON: not a valid 5-field cron"),
        ("PATBOT_SCHEDULER", "maybe", "PATBOT_SCHEDULER: Input should be 'on' or 'off'"),
        ("REDIS_URL", "http://redis", "REDIS_URL: must start with redis://"),
        ("PORT", "http", "PORT: Input should be a valid integer"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = info.value.user_message
    assert message.startswith(expected)
    assert "\n" not in message


def test_serve_requirements_name_the_first_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(ConfigError, match=r"^SLACK_SIGNING_SECRET is required"):
        load_settings().require_for_serve()


def test_databricks_is_required_for_the_fleet() -> None:
    with pytest.raises(ConfigError, match=r"^DATABRICKS_HOST is required"):
        load_settings().require_databricks()


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-very-secret")
    s = load_settings()
    assert "dapi-very-secret" not in repr(s) and "dapi-very-secret" not in str(s.model_dump())
