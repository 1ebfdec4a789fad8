"""The approval store against a real redis-server: races, outages and restarts."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bot.approvals import (
    AlreadyDecided,
    ApprovalStore,
    DuplicateRequest,
    RequestDraft,
    RequestKind,
    RequestState,
    StoreUnavailable,
    connect_redis,
)

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=24)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(redis_url, clock) -> ApprovalStore:
    client, embedded = connect_redis(redis_url)
    assert embedded is False
    return ApprovalStore(client, ttl=TTL, clock=clock)


def new(store: ApprovalStore, subject: str = "dapi-token-1"):
    return store.create(
        RequestDraft(
            RequestKind.REVOKE, subject, "adb-1.azuredatabricks.net", "U_REQ", "left", {"x": "1"}, "o@x.com"
        )
    )


def run_concurrently(n: int, func) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = func(i)
        except Exception as exc:  # collected and checked by the caller
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_fifty_concurrent_approvals_have_exactly_one_winner(store):
    request = new(store)
    results = run_concurrently(50, lambda i: store.decide(request.id, "approved", f"U{i:03d}"))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and winners[0].state is RequestState.APPROVED
    assert len(losers) == 49 and all(isinstance(e, AlreadyDecided) for e in losers)
    assert all(e.request.decided_by == winners[0].request.decided_by for e in losers)
    stored = store.get(request.id)
    assert stored.state is RequestState.APPROVED and stored.decided_by == winners[0].request.decided_by
    assert Counter(e.event for e in store.audit.entries()) == Counter({"created": 1, "approved": 1})


def test_concurrent_mixed_decisions_have_exactly_one_winner(store):
    request = new(store)
    decisions = ["approved", "denied", "cancelled"]
    results = run_concurrently(30, lambda i: store.decide(request.id, decisions[i % 3], f"U{i}"))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyDecided) for r in results if isinstance(r, Exception))
    assert store.get(request.id).state is winners[0].state


def test_concurrent_creates_for_one_subject_make_one_request(store):
    results = run_concurrently(20, lambda i: new(store))
    created = [r for r in results if not isinstance(r, Exception)]
    assert len(created) == 1
    assert all(
        isinstance(r, DuplicateRequest) and r.existing.id == created[0].id
        for r in results
        if r is not created[0]
    )
    assert [r.id for r in store.pending()] == [created[0].id]
    assert len(store._redis.keys("patbot:req:*")) == 1


def test_redis_down_raises_store_unavailable_and_writes_nothing(redis_server, store):
    request = new(store)
    snapshot = {k: store._redis.dump(k) for k in store._redis.keys("*")}
    redis_server.stop()
    with pytest.raises(StoreUnavailable) as info:
        new(store, subject="dapi-token-2")
    assert "nothing was changed" in info.value.user_message
    with pytest.raises(StoreUnavailable):
        store.decide(request.id, "approved", "U_APP")
    with pytest.raises(StoreUnavailable):
        store.expire_due()

    redis_server.start()
    assert store._redis.ping() is True
    # same client and store: reconnects, and reloads its scripts (the script cache died with the server)
    assert {k: store._redis.dump(k) for k in store._redis.keys("*")} == snapshot
    assert store.get(request.id).state is RequestState.PENDING
    assert store.decide(request.id, "approved", "U_APP").state is RequestState.APPROVED
    assert new(store, subject="dapi-token-2").state is RequestState.PENDING


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_pending_requests_survive_a_redis_restart(redis_server, store, clock, how):
    a = new(store, subject="tok-a")
    b = new(store, subject="tok-b")
    store.attach_message(a.id, "C_ADMIN", "1712345678.000100")
    getattr(redis_server, how)()
    redis_server.start()

    client, _ = connect_redis(redis_server.url)
    fresh = ApprovalStore(client, ttl=TTL, clock=clock)
    assert sorted(r.id for r in fresh.pending()) == sorted([a.id, b.id])
    assert fresh.get(a.id).admin_ts == "1712345678.000100"
    with pytest.raises(DuplicateRequest):
        new(fresh, subject="tok-a")
    assert fresh.decide(a.id, "approved", "U_APP").state is RequestState.APPROVED
    assert fresh.record_outcome(a.id, "revoked").outcome == "revoked"
    clock.now = T0 + TTL
    assert [r.id for r in fresh.expire_due()] == [b.id]
    assert [e.event for e in fresh.audit.entries()] == [
        "created",
        "created",
        "approved",
        "outcome",
        "expired",
    ]


def test_sweep_and_outcome_on_real_redis(store, clock):
    a = new(store, subject="tok-a")
    clock.now = a.expires_at
    results = run_concurrently(10, lambda i: store.expire_due())
    assert sorted(len(r) for r in results) == [0] * 9 + [1]  # one replica reports it
    assert store.get(a.id).state is RequestState.EXPIRED
