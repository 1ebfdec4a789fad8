"""The core's long-lived parts as one record (`Services`, what the weekly job works from) and the builders
of the fleet and the policy; `entrypoints.bootstrap.Application` calls them, once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.databricks import ClientFactory, HostResolver, discover_account_workspaces, workspace_client_factory
from bot.errors import ConfigError
from bot.fleet import WORKSPACE_REFRESH_SECONDS, Fleet
from bot.governance.models import Policy, Workspace
from bot.settings import Settings

if TYPE_CHECKING:  # not imported at run time: `patbot audit` needs neither Redis nor the store
    from databricks.sdk import AccountClient
    from redis import Redis

    from bot.approvals import ApprovalStore

Clock = Callable[[], datetime]


# Concurrent Slack users share one read of a workspace; patbot's own writes clear it at once.
READ_TTL_SECONDS = 10.0


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    """Everything long-lived the CLI and the Slack app use; tests swap parts with `replace`."""

    settings: Settings
    fleet: Fleet
    policy: Policy
    clock: Clock = field(default=utc_now)
    redis: Redis[Any] | None = None
    approvals: ApprovalStore | None = None
    embedded_store: bool = False

    def replace(self, **changes: object) -> Services:
        """A copy with some parts swapped (tests, demo)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def policy_from(settings: Settings) -> Policy:
    """The finding thresholds of the settings."""
    return Policy(
        stale_days=settings.stale_days,
        max_lifetime_days=settings.max_lifetime_days,
        rotation_days=settings.rotation_days,
    )


def build_fleet(
    settings: Settings,
    *,
    client_factory: ClientFactory | None = None,
    account_client: Callable[[], AccountClient] | None = None,
    host_resolver: HostResolver | None = None,
    refresh_seconds: float = WORKSPACE_REFRESH_SECONDS,
) -> Fleet:
    """The governed workspaces: the account's (asked again every `refresh_seconds`), `PATBOT_WORKSPACES`,
    or `DATABRICKS_HOST`."""
    settings.require_databricks()
    secret = settings.databricks_client_secret
    factory = client_factory or workspace_client_factory(
        token=settings.databricks_token.get_secret_value() if settings.databricks_token else None,
        client_id=settings.databricks_client_id,
        client_secret=secret.get_secret_value() if secret else None,
        retry_timeout_seconds=settings.databricks_timeout_seconds,
    )
    if settings.account_mode:
        make_account = account_client or (lambda: _account_client(settings))
        return Fleet(
            lambda: discover_account_workspaces(make_account(), host_resolver),
            factory,
            READ_TTL_SECONDS,
            refresh_seconds=refresh_seconds,
        )
    hosts = settings.workspaces or [settings.databricks_host or ""]
    return Fleet([Workspace(host=h) for h in hosts if h], factory, READ_TTL_SECONDS)


def _account_client(settings: Settings) -> AccountClient:
    from databricks.sdk import AccountClient
    from databricks.sdk.config import Config

    kwargs: dict[str, Any] = {
        "account_id": settings.databricks_account_id,
        "retry_timeout_seconds": settings.databricks_timeout_seconds,
        "http_timeout_seconds": min(5, settings.databricks_timeout_seconds),
    }
    if settings.databricks_account_host:
        kwargs["host"] = settings.databricks_account_host
    if settings.databricks_client_id and settings.databricks_client_secret:
        kwargs["client_id"] = settings.databricks_client_id
        kwargs["client_secret"] = settings.databricks_client_secret.get_secret_value()
    elif settings.databricks_token:
        kwargs["token"] = settings.databricks_token.get_secret_value()
    try:
        return AccountClient(config=Config(**kwargs))
    except ValueError as exc:
        raise ConfigError(f"DATABRICKS_ACCOUNT_ID: cannot authenticate to the account ({exc})") from None
