"""A short-lived, single-flight cache for Databricks reads.

When fifty people type `/pat audit` at once, each workspace is read once, not fifty times: callers asking
for a key that is being loaded wait for that load, and its result is kept for a few seconds. Failures
are shared with the callers already waiting, but never kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class _Abandoned(Exception):
    """A load whose caller was cancelled before it ended."""


_NO_FLIGHT: Future[Any] = Future()  # what `_claim` returns beside a fresh value: nothing to wait for


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
        while True:
            hit, flight, generation = self._claim(key)
            if hit is not None:
                return hit[1]  # type: ignore[no-any-return]
            if generation is not None:
                break
            with contextlib.suppress(_Abandoned):  # its leader was cancelled: load it here instead
                return flight.result()  # type: ignore[no-any-return]
        try:
            value = load()
        except BaseException as exc:
            self._settle(key, flight, generation, failure=exc)
            raise
        self._settle(key, flight, generation, value=value)
        return value

    async def get_async(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """`get` on an event loop: a load in flight in another thread or loop is awaited, not waited for."""
        while True:
            hit, flight, generation = self._claim(key)
            if hit is not None:
                return hit[1]  # type: ignore[no-any-return]
            if generation is not None:
                break
            with contextlib.suppress(_Abandoned):
                return await asyncio.wrap_future(flight)
        try:
            value = await load()
        except asyncio.CancelledError:
            # This caller's audit stopped: the others waiting load it themselves rather than share its end.
            self._settle(key, flight, generation, failure=_Abandoned())
            raise
        except BaseException as exc:
            self._settle(key, flight, generation, failure=exc)
            raise
        self._settle(key, flight, generation, value=value)
        return value

    def _claim(self, key: str) -> tuple[tuple[float, Any] | None, Future[Any], int | None]:
        """A fresh value, or the flight to wait for (generation None), or a new flight to lead."""
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] > self._clock():
                return hit, _NO_FLIGHT, None
            flight = self._flights.get(key)
            if flight is not None:
                return None, flight, None
            flight = self._flights[key] = Future()
            return None, flight, self._generation

    def _settle(
        self,
        key: str,
        flight: Future[Any],
        generation: int,
        *,
        value: Any = None,
        failure: BaseException | None = None,
    ) -> None:
        """End a flight: its value kept for `ttl` (unless a write cleared the cache meanwhile), or its failure
        handed to the callers waiting, never kept."""
        with self._lock:
            self._flights.pop(key, None)
            if failure is None and self.ttl > 0 and generation == self._generation:
                self._values[key] = (self._clock() + self.ttl, value)
        if failure is not None:
            flight.set_exception(failure)
        else:
            flight.set_result(value)

    def clear(self) -> None:
        """Forget every value (a load already in flight is not kept either)."""
        with self._lock:
            self._values.clear()
            self._generation += 1
