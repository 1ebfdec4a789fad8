"""The approval store against a real redis-server: races, outages and restarts."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.approvals import (
    AlreadyDecided,
    ApprovalStore,
    DuplicateRequest,
    RequestDraft,
    RequestExpired,
    RequestKind,
    RequestState,
    RevokePlan,
    StoreUnavailable,
    connect_redis,
)
from tests.unit.test_approvals import assert_bookkeeping

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=24)


def contents(client) -> dict:
    """Every key's type and value, read logically (DUMP bytes depend on the encoding Redis picked)."""
    readers = {
        "hash": client.hgetall,
        "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        "string": client.get,
        "stream": lambda k: client.xrange(k),
        "set": client.smembers,
        "list": lambda k: client.lrange(k, 0, -1),
    }
    out = {}
    for key in client.keys("*"):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        out[key] = (kind, readers[kind](key))
    return out


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
            RequestKind.REVOKE,
            subject,
            "adb-1.azuredatabricks.net",
            "U_REQ",
            "left",
            RevokePlan("prod"),
            "o@x.com",
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
    assert len(store._redis.keys(store.request_key("*"))) == 1
    assert_bookkeeping(store, T0)


def test_redis_down_raises_store_unavailable_and_writes_nothing(redis_server, store):
    request = new(store)
    snapshot = contents(store._redis)
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
    assert contents(store._redis) == snapshot
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
    assert_bookkeeping(store, clock.now)


def test_fifty_concurrent_transitions_keep_the_bookkeeping_whole(store, clock):
    """Creates, clicks, sweeps and outcomes from many threads at once; afterwards every index, guard
    and audit entry agrees with the request hashes."""
    subjects = [f"tok-{i}" for i in range(5)]
    for subject in subjects:
        new(store, subject)
    clock.now = T0 + timedelta(hours=1)

    def work(i: int) -> None:
        pending = store.pending()
        if i % 5 == 0:
            store.expire_due()
        with_errors = (AlreadyDecided, DuplicateRequest, RequestExpired)
        try:
            if i % 3 == 0:
                new(store, subjects[i % 5])
            elif pending:
                request = pending[i % len(pending)]
                won = store.decide(request.id, ["approved", "denied"][i % 2], f"U{i}")
                if won.state is RequestState.APPROVED and i % 4:
                    store.record_outcome(request.id, "revoked")
        except with_errors:
            pass

    results = run_concurrently(50, work)
    assert all(r is None for r in results), results
    assert_bookkeeping(store, clock.now)


# ------------------------------------------------------------------- Redis dying in the middle


def _split_command(buf: bytes) -> tuple[int, str] | None:
    """The end of the first whole RESP command in ``buf`` and its name, or None while incomplete."""
    end = buf.find(b"\r\n")
    if end < 0:
        return None
    count, pos, name = int(buf[1:end]), end + 2, ""
    for i in range(count):
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        start = end + 2
        stop = start + int(buf[pos + 1 : end])
        if len(buf) < stop + 2:
            return None
        if i == 0:
            name = buf[start:stop].decode().upper()
        pos = stop + 2
    return pos, name


class DyingProxy:
    """A TCP proxy in front of redis-server that counts the commands clients send and, at a chosen
    command, plays Redis dying: ``before`` the command reaches the server, or ``after`` the server ran
    it but before its reply gets back. Then it refuses every connection until :meth:`heal`.
    ``lost-reply`` drops that one reply and its connection, and keeps serving."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self._lock = threading.Lock()
        self._cut: Callable[[int, str], bool] | None = None
        self._mode = "before"
        self.commands = 0
        self.cut = False
        self.cut_name = ""
        self.down = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, cut: Callable[[int, str], bool], mode: str) -> None:
        with self._lock:
            self._cut, self._mode, self.commands, self.cut, self.down = cut, mode, 0, False, False

    def heal(self) -> None:
        with self._lock:
            self._cut, self.down = None, False

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                conn.close()
            else:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _action(self, name: str) -> str | None:
        with self._lock:
            n, self.commands = self.commands, self.commands + 1
            if self._cut is None or not self._cut(n, name):
                return None
            self._cut, self.cut, self.down = None, True, self._mode != "lost-reply"
            self.cut_name = name
            return self._mode

    def _serve(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self._upstream))
        dropping, replied = threading.Event(), threading.Event()

        def replies() -> None:
            try:
                while data := upstream.recv(65536):
                    if dropping.is_set():
                        replied.set()
                    else:
                        conn.sendall(data)
            except OSError:
                pass

        threading.Thread(target=replies, daemon=True).start()
        buf = b""
        try:
            while chunk := conn.recv(65536):
                buf += chunk
                while (command := _split_command(buf)) is not None:
                    end, name = command
                    action = self._action(name)
                    if action == "before":
                        return
                    if action is not None:
                        dropping.set()
                    upstream.sendall(buf[:end])
                    buf = buf[end:]
                    if action is not None:
                        replied.wait(5)  # the server ran it; its answer is lost
                        return
        except OSError:
            pass
        finally:
            conn.close()
            upstream.close()


@pytest.fixture
def proxy(redis_server, redis_url) -> Iterator[DyingProxy]:
    dying = DyingProxy(redis_server.port)
    yield dying
    dying.close()


def _a_draft(subject: str) -> RequestDraft:
    return RequestDraft(RequestKind.REVOKE, subject, "adb-1.azuredatabricks.net", "U_REQ", "left")


def _nothing(store: ApprovalStore, clock: FakeClock) -> str:
    return ""


def _one_pending(store: ApprovalStore, clock: FakeClock) -> str:
    return new(store, "tok-a").id


def _one_past_expiry(store: ApprovalStore, clock: FakeClock) -> str:
    request = new(store, "tok-a")
    clock.now = request.expires_at
    return request.id


def _two_past_expiry(store: ApprovalStore, clock: FakeClock) -> str:
    new(store, "tok-b")
    return _one_past_expiry(store, clock)


def _one_in_doubt(store: ApprovalStore, clock: FakeClock) -> str:
    return store.decide(new(store, "tok-a").id, "approved", "U_APP").request.id


SetUp = Callable[[ApprovalStore, FakeClock], str]
Operation = Callable[[ApprovalStore, str], object]

# name: (set-up on the healthy store returning a request id, the operation through the proxy)
SCENARIOS: dict[str, tuple[SetUp, Operation]] = {
    "create": (_nothing, lambda s, _: s.create(_a_draft("tok-new"))),
    "create over a stale holder": (_one_past_expiry, lambda s, _: s.create(_a_draft("tok-a"))),
    "approve": (_one_pending, lambda s, i: s.decide(i, "approved", "U_APP")),
    "deny": (_one_pending, lambda s, i: s.decide(i, "denied", "U_APP")),
    "expire on click": (_one_past_expiry, lambda s, i: s.decide(i, "approved", "U_APP")),
    "sweep": (_two_past_expiry, lambda s, _: s.expire_due()),
    "outcome": (_one_in_doubt, lambda s, i: s.record_outcome(i, "revoked")),
    "attach": (_one_pending, lambda s, i: s.attach_message(i, "C_ADMIN", "1.2")),
}


@pytest.mark.parametrize("mode", ["before", "after"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_redis_dying_at_any_command_leaves_no_half_done_transition(
    redis_server, proxy, clock, scenario, mode
):
    """Cut the connection at every command of the operation in turn, as if Redis died right there.
    Whatever the cut, the hash and its bookkeeping either all moved or all stayed; a cut before a
    command reaches Redis raises StoreUnavailable with nothing changed."""
    set_up, operation = SCENARIOS[scenario]
    direct, _ = connect_redis(redis_server.url)
    cut_names = set()
    for cut_at in range(100):
        redis_server.flush()
        clock.now = T0
        healthy = ApprovalStore(direct, ttl=TTL, clock=clock)
        request_id = set_up(healthy, clock)
        before = contents(direct)
        client, _ = connect_redis(proxy.url)
        proxy.arm(lambda n, _name, k=cut_at: n == k, mode)
        failed = False
        try:
            operation(ApprovalStore(client, ttl=TTL, clock=clock), request_id)
        except StoreUnavailable:
            failed = True
        except RequestExpired:
            assert scenario == "expire on click"
        finally:
            proxy.heal()
            client.close()
        if not proxy.cut:
            assert not failed
            break
        cut_names.add(proxy.cut_name)
        assert_bookkeeping(healthy, clock.now)
        if failed and mode == "before":
            assert contents(direct) == before, f"cut at command {cut_at}"
    else:
        pytest.fail("the operation never finished")
    assert "EVALSHA" in cut_names  # the cuts did hit the transition itself


@pytest.mark.parametrize("scenario", ["create", "approve", "expire on click", "sweep", "outcome"])
def test_a_lost_reply_is_retried_and_recognised(redis_server, proxy, clock, scenario):
    """The script ran but its reply was lost: redis-py sends it again on a new connection, and the
    nonce makes the script answer as the first time, without doing anything twice."""
    set_up, operation = SCENARIOS[scenario]
    healthy = ApprovalStore(connect_redis(redis_server.url)[0], ttl=TTL, clock=clock)
    request_id = set_up(healthy, clock)
    proxy.arm(lambda _n, name: name == "EVALSHA", "lost-reply")
    client, _ = connect_redis(proxy.url)
    try:
        result = operation(ApprovalStore(client, ttl=TTL, clock=clock), request_id)
    except RequestExpired as exc:
        assert exc.transitioned is True  # the retry still knows it was this call
        result = exc.request
    assert proxy.cut
    if scenario == "sweep":
        assert len(result) == 2
    assert_bookkeeping(healthy, clock.now)


def test_a_key_of_the_wrong_type_refuses_before_writing(redis_url, store, clock):
    request = new(store)
    store._redis.delete(store.audit.key)
    store._redis.set(store.audit.key, "not a stream")
    before = contents(store._redis)
    for call in (
        lambda: store.decide(request.id, "approved", "U_APP"),
        lambda: new(store, "tok-other"),
    ):
        with pytest.raises(StoreUnavailable):
            call()
    assert contents(store._redis) == before
