"""One frozen settings class for every variable of the contract, and one-line validation errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

_SLACK_PRINCIPAL = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """patbot's configuration, read from the environment, `.env` or a secrets directory."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # Slack
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="PATBOT_SLACK_API_URL")
    slack_timeout_seconds: int = Field(
        default=15, ge=1, le=120, validation_alias="PATBOT_SLACK_TIMEOUT_SECONDS"
    )

    # Databricks (the SDK's other unified-auth variables are read by the SDK itself)
    databricks_host: str | None = Field(default=None, validation_alias="DATABRICKS_HOST")
    databricks_token: SecretStr | None = Field(default=None, validation_alias="DATABRICKS_TOKEN")
    databricks_client_id: str | None = Field(default=None, validation_alias="DATABRICKS_CLIENT_ID")
    databricks_client_secret: SecretStr | None = Field(
        default=None, validation_alias="DATABRICKS_CLIENT_SECRET"
    )
    databricks_account_id: str | None = Field(default=None, validation_alias="DATABRICKS_ACCOUNT_ID")
    databricks_account_host: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABRICKS_ACCOUNT_HOST", "PATBOT_ACCOUNT_HOST")
    )
    workspaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="PATBOT_WORKSPACES"
    )
    databricks_timeout_seconds: int = Field(
        default=10, ge=1, le=300, validation_alias="PATBOT_DATABRICKS_TIMEOUT_SECONDS"
    )
    audit_concurrency: int = Field(default=1024, ge=1, le=1024, validation_alias="PATBOT_AUDIT_CONCURRENCY")

    # Stores and Slack targets
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    admin_channel: str | None = Field(default=None, validation_alias="PATBOT_ADMIN_CHANNEL")
    approvers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="PATBOT_APPROVERS"
    )

    # Policy
    stale_days: int = Field(default=30, ge=1, le=3650, validation_alias="PATBOT_STALE_DAYS")
    max_lifetime_days: int = Field(default=90, ge=1, le=730, validation_alias="PATBOT_MAX_LIFETIME_DAYS")
    rotation_days: int = Field(default=90, ge=1, le=3650, validation_alias="PATBOT_ROTATION_DAYS")
    approval_ttl_hours: float = Field(
        default=24, gt=0, le=24 * 30, validation_alias="PATBOT_APPROVAL_TTL_HOURS"
    )
    secret_scope: str | None = Field(default=None, validation_alias="PATBOT_SECRET_SCOPE")
    require_scopes: bool = Field(default=True, validation_alias="PATBOT_REQUIRE_SCOPES")

    # Scheduling and serving
    reminder_cron: str = Field(default="0 9 * * mon", validation_alias="PATBOT_REMINDER_CRON")
    timezone: str = Field(default="UTC", validation_alias="PATBOT_TIMEZONE")
    scheduler: Literal["on", "off"] = Field(default="on", validation_alias="PATBOT_SCHEDULER")
    port: int = Field(default=3000, ge=1, le=65535, validation_alias="PORT")

    @field_validator("workspaces", "approvers", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("workspaces")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [_normalise_host(host) for host in value]

    @field_validator("databricks_host", "databricks_account_host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return _normalise_host(value) if value else None

    @field_validator("approvers")
    @classmethod
    def _approver_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _SLACK_PRINCIPAL.match(v)]
        if bad:
            raise ValueError(f"expected Slack user (U…/W…) or user-group (S…) IDs, got {', '.join(bad)}")
        return value

    @field_validator("admin_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not _SLACK_CHANNEL.match(value):
            raise ValueError(f"expected a Slack channel ID such as C0123ABCD, got {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("reminder_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from bot.scheduler import parse_cron

        try:
            parse_cron(value)
        except ValueError as exc:
            raise ValueError(f"not a valid 5-field cron schedule ({exc})") from None
        return value

    @field_validator("secret_scope")
    @classmethod
    def _scope(cls, value: str | None) -> str | None:
        return value.strip() or None if value else None

    @property
    def account_mode(self) -> bool:
        """Whether workspaces are discovered from the Databricks account."""
        return bool(self.databricks_account_id)

    def require(self, *fields: str) -> None:
        """Raise `ConfigError` naming the first of `fields` that is unset."""
        for name in fields:
            value = getattr(self, name)
            if value is None or value == [] or value == "":
                raise ConfigError(f"{env_name(name)} is required but not set")

    def require_databricks(self) -> None:
        """Raise `ConfigError` unless at least one workspace can be reached."""
        if not (self.databricks_host or self.workspaces or self.databricks_account_id):
            raise ConfigError(
                "DATABRICKS_HOST is required but not set (or PATBOT_WORKSPACES, or DATABRICKS_ACCOUNT_ID)"
            )

    def require_for_serve(self) -> None:
        """Raise `ConfigError` for the first missing variable that `patbot serve` needs."""
        self.require("slack_bot_token", "slack_signing_secret", "admin_channel", "approvers")
        self.require_databricks()


def _normalise_host(host: str) -> str:
    host = host.strip().rstrip("/")
    if not host:
        raise ValueError("empty host")
    if "://" not in host:
        host = "https://" + host
    if not host.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) host: {host!r}")
    return host


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if alias else field.upper()


def load_settings(secrets_dir: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning a validation failure into one `ConfigError` line."""
    kwargs: dict[str, Any] = dict(overrides)
    if secrets_dir is not None and Path(secrets_dir).is_dir():
        kwargs["_secrets_dir"] = str(secrets_dir)
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        raise ConfigError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    loc = error["loc"][0] if error["loc"] else ""
    name = env_name(str(loc)) if str(loc) in Settings.model_fields else str(loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    shown = (
        "" if value is None or "secret" in name.lower() or "token" in name.lower() else f" (got {value!r})"
    )
    if error["type"] in {"value_error", "string_type", "missing"} or isinstance(value, dict):
        shown = ""
    return f"{name}: {message}{shown}"
