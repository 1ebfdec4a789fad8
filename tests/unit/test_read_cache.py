"""Single-flight reads kept briefly; writes clear them; failures are shared but never kept."""

from __future__ import annotations

import threading
import time

import pytest

from bot.read_cache import ReadCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_callers_share_one_load() -> None:
    cache = ReadCache(ttl=10)
    calls = []
    gate = threading.Event()

    def load() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", load))) for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join()
    assert results == [42] * 20 and len(calls) == 1


def test_values_expire_and_clear_forgets() -> None:
    clock = Clock()
    cache = ReadCache(ttl=10, clock=clock)
    counter = iter(range(100))
    assert cache.get("k", lambda: next(counter)) == 0
    assert cache.get("k", lambda: next(counter)) == 0
    clock.now += 10
    assert cache.get("k", lambda: next(counter)) == 1
    cache.clear()
    assert cache.get("k", lambda: next(counter)) == 2


def test_failures_are_not_kept() -> None:
    cache = ReadCache(ttl=10)

    def boom() -> int:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        cache.get("k", boom)
    assert cache.get("k", lambda: 7) == 7


def test_a_load_racing_a_write_is_not_kept() -> None:
    cache = ReadCache(ttl=10)

    def load_then_write() -> int:
        cache.clear()  # a write lands while the read is in flight
        return 1

    assert cache.get("k", load_then_write) == 1
    assert cache.get("k", lambda: 2) == 2


def test_zero_ttl_still_shares_in_flight_loads_but_keeps_nothing() -> None:
    cache = ReadCache(ttl=0)
    counter = iter(range(10))
    assert cache.get("k", lambda: next(counter)) == 0
    assert cache.get("k", lambda: next(counter)) == 1
