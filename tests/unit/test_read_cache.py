"""Single-flight reads kept briefly; writes clear them; failures are shared but never kept."""

from __future__ import annotations

import asyncio
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


def test_a_load_on_an_event_loop_is_shared_with_threads_and_other_loops() -> None:
    cache = ReadCache(ttl=10)
    calls = []
    gate = threading.Event()

    async def load() -> int:
        calls.append(1)
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return 7

    results: list[int] = []
    leader = threading.Thread(target=lambda: results.append(asyncio.run(cache.get_async("k", load))))
    leader.start()
    while not calls:
        time.sleep(0.01)
    waiters = [
        threading.Thread(target=lambda: results.append(cache.get("k", lambda: 0))),
        threading.Thread(target=lambda: results.append(asyncio.run(cache.get_async("k", load)))),
    ]
    for t in waiters:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in [leader, *waiters]:
        t.join()
    assert results == [7, 7, 7] and len(calls) == 1


def test_a_cancelled_load_is_loaded_again_by_those_waiting_for_it() -> None:
    """One audit stopped (its consumer gave up) while another waited for the same read: the other reads it."""
    cache = ReadCache(ttl=10)
    started = threading.Event()

    async def stalled() -> int:
        started.set()
        await asyncio.sleep(30)
        return 1

    async def leader_then_cancel() -> None:
        task = asyncio.ensure_future(cache.get_async("k", stalled))
        while not started.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the waiter below is waiting by now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    results: list[int] = []
    waiter = threading.Thread(target=lambda: results.append(cache.get("k", lambda: 2)))
    leading = threading.Thread(target=lambda: asyncio.run(leader_then_cancel()))
    leading.start()
    started.wait(5)
    waiter.start()
    leading.join()
    waiter.join(5)
    assert results == [2]
