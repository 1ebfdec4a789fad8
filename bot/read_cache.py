"""A short-lived, single-flight cache for Databricks reads.

When fifty people type `/pat audit` at once, each workspace is read once, not fifty times: callers asking
for a key that is being loaded wait for that load, and its result is kept for a few seconds. Failures
are shared with the callers already waiting, but never kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class ReadCache:
    """Single-flight loads, results kept for `ttl` seconds; `clear()` after every write."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, Any]] = {}
        self._flights: dict[str, Future[Any]] = {}
        self._generation = 0

    def get(self, key: str, load: Callable[[], T]) -> T:
        """The cached value of `key`, or the result of one shared call to `load`."""
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] > self._clock():
                return hit[1]  # type: ignore[no-any-return]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Future()
            generation = self._generation
        if not leader:
            return flight.result()  # type: ignore[no-any-return]
        try:
            value = load()
        except BaseException as exc:
            with self._lock:
                self._flights.pop(key, None)
            flight.set_exception(exc)
            raise
        with self._lock:
            self._flights.pop(key, None)
            if self.ttl > 0 and generation == self._generation:
                self._values[key] = (self._clock() + self.ttl, value)
        flight.set_result(value)
        return value

    def clear(self) -> None:
        """Forget every value (a load already in flight is not kept either)."""
        with self._lock:
            self._values.clear()
            self._generation += 1
