"""The Redis client behind the store: a real server from ``REDIS_URL``, or an embedded fakeredis."""

from __future__ import annotations

from typing import Any, NoReturn, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.errors import ConfigError


def connect_redis(url: str | None) -> tuple[redis.Redis[Any], bool]:
    """A Redis client for ``REDIS_URL``, and whether it is the embedded in-memory one.

    ``redis://``, ``rediss://`` and ``unix://`` give a real client (str replies, 2 s socket timeouts,
    one quick retry on connection errors, health checks on idle connections); no URL gives an embedded
    ``fakeredis`` server with Lua support — ``embedded=True`` tells the caller to warn that approvals do
    not survive a restart. No connection is attempted for a real URL (check with ``ping``).
    """
    if url is None or not url.strip():
        return _embedded_redis(), True
    url = url.strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    try:
        client: redis.Redis[Any] = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            health_check_interval=15,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
            client_name="patbot",
        )
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a valid Redis URL: {exc}") from None
    return client, False


def _embedded_redis() -> redis.Redis[Any]:
    import fakeredis

    client: redis.Redis[Any] = fakeredis.FakeRedis(decode_responses=True)
    try:
        if cast(Any, client).eval("return 1", 0) != 1:
            raise RuntimeError("unexpected reply")
    except Exception as exc:  # lupa missing or broken
        _no_lua(exc)
    return client


def _no_lua(exc: Exception) -> NoReturn:
    raise ConfigError(
        "REDIS_URL is unset and the embedded store has no Lua support; install fakeredis[lua] "
        f"(lupa) or set REDIS_URL ({type(exc).__name__})"
    ) from exc
