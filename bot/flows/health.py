"""What the health endpoints and `/metrics` ask the core: does the store answer, how many requests wait."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from bot.approvals import ApprovalStore


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """Requests waiting for a decision, and approved ones without a recorded outcome."""

    pending: int
    in_doubt: int


def request_counts(store: ApprovalStore) -> RequestCounts:
    """Counted now; raises `ApprovalError` (`StoreUnavailable`) when Redis does not answer."""
    return RequestCounts(len(store.pending()), len(store.in_doubt()))


def store_ready(redis: Redis[Any] | None) -> tuple[bool, str]:
    """Whether the store answers a PING, and a word on why not."""
    if redis is None:
        return True, "ok (no store configured)"
    try:
        redis.ping()
    except (RedisError, OSError) as exc:
        return False, f"redis unavailable: {type(exc).__name__}"
    return True, "ok"
