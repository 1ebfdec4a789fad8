"""What the weekly job works from: the Redis store and this moment's fleet audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis

from bot.approvals import StoreUnavailable
from bot.errors import ConfigError
from bot.governance.audit import audit
from bot.governance.models import FleetReport
from bot.services import Services


def require_store(services: Services) -> redis.Redis[Any]:
    """The configured Redis, answering; `ConfigError` without one, `StoreUnavailable` if it is down."""
    if services.redis is None:
        raise ConfigError("REDIS_URL: no Redis store is configured")
    try:
        services.redis.ping()
    except redis.RedisError as exc:
        raise StoreUnavailable(f"cannot reach Redis at REDIS_URL ({type(exc).__name__})") from None
    return services.redis


def audit_now(services: Services, moment: datetime) -> FleetReport:
    """The fleet audit the weekly job works from."""
    return audit(
        services.fleet,
        services.policy,
        now=moment,
        max_in_flight=services.settings.audit_concurrency,
        oauth=True,  # the summary shows the service principals' migration to OAuth
    )
