"""The approval store and audit log on fakeredis: transitions, duplicates, expiry, sweep, the log."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from bot.approvals import (
    AlreadyDecided,
    ApprovalError,
    ApprovalRequest,
    ApprovalStore,
    AuditEvent,
    AuditLog,
    DuplicateRequest,
    InvalidTransition,
    RequestDraft,
    RequestExpired,
    RequestKind,
    RequestNotFound,
    RequestState,
    StoreUnavailable,
    TokenPlan,
    connect_redis,
)
from bot.errors import ConfigError, GovernanceError

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=24)
US = timedelta(microseconds=1)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def client(server):
    return fakeredis.FakeRedis(server=server, decode_responses=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(client, clock) -> ApprovalStore:
    return ApprovalStore(client, ttl=TTL, clock=clock)


def new(
    store: ApprovalStore, subject: str = "dapi-token-1", kind: str = "revoke", **kwargs
) -> ApprovalRequest:
    args = {"workspace": "adb-1.azuredatabricks.net", "requester": "U_REQ", "reason": "left the team"}
    args.update(kwargs)
    now = args.pop("now", None)
    return store.create(RequestDraft(RequestKind(kind), subject, **args), now=now)


def events(store: ApprovalStore, request_id: str | None = None) -> list[str]:
    return [e.event for e in store.audit.entries() if request_id is None or e.request_id == request_id]


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def assert_bookkeeping(store: ApprovalStore, now: datetime) -> None:
    """The pending and in-doubt sets, the pending-by guards and the audit stream agree with the request
    hashes, read straight from Redis."""
    r = store._redis
    hashes = {}
    for key in r.scan_iter(match=store.request_key("*")):
        fields = {_str(k): _str(v) for k, v in r.hgetall(key).items()}
        hashes[fields["id"]] = fields
    pending = {_str(m): int(s) for m, s in r.zrange(store.pending_key, 0, -1, withscores=True)}
    assert pending == {i: int(f["expires_at_us"]) for i, f in hashes.items() if f["state"] == "pending"}
    in_doubt = {_str(m) for m in r.zrange(store.in_doubt_key, 0, -1)}
    assert in_doubt == {i for i, f in hashes.items() if f["state"] == "approved" and not f.get("outcome")}
    guard_pattern = store.pending_by_key("revoke", "*").replace(":revoke:", ":")
    guards = {_str(k): _str(r.get(k)) for k in r.scan_iter(match=guard_pattern)}
    for key, holder in guards.items():
        assert hashes[holder]["state"] == "pending", f"{key} names a request that is not pending"
        assert store.pending_by_key(hashes[holder]["kind"], hashes[holder]["subject"]) == key
    for request_id, f in hashes.items():
        if f["state"] == "pending" and now < datetime.fromisoformat(f["expires_at"]):
            assert guards[store.pending_by_key(f["kind"], f["subject"])] == request_id
    logged: dict[str, list[str]] = defaultdict(list)
    for entry in store.audit.entries():
        logged[entry.request_id].append(entry.event)
    assert set(logged) == set(hashes)
    for request_id, f in hashes.items():
        expected = ["created"] + ([] if f["state"] == "pending" else [f["state"]])
        assert logged[request_id] == expected + (["outcome"] if f.get("outcome") else [])


def snapshot(client) -> dict[str, object]:
    """Every key and its whole content (TTLs left out: they tick in real time)."""
    readers = {
        "string": client.get,
        "hash": client.hgetall,
        "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        "stream": client.xrange,
    }
    return {_str(k): readers[_str(client.type(k))](k) for k in client.keys("*")}


def restore(client, key: str, content) -> None:
    """Write back what :func:`snapshot` read for one key."""
    if isinstance(content, str):
        client.set(key, content)
    elif isinstance(content, dict):
        client.hset(key, mapping=content)
    elif content and isinstance(content[0], tuple) and isinstance(content[0][1], float):
        client.zadd(key, dict(content))
    else:
        for entry_id, fields in content:
            client.xadd(key, fields, id=entry_id)


def clobber(client, key: str) -> None:
    """Give ``key`` the wrong type: a string where a set, a stream or a hash belongs, a hash where a
    string (the guard) belongs. Redis fails a write to it, half-way through a script."""
    existing = _str(client.type(key))
    client.delete(key)
    if existing == "string" or key.split(":")[1] == "pending-by":
        client.hset(key, "not", "a string")
    else:
        client.set(key, "not a " + existing)


# ------------------------------------------------------------------------------------------ create


def test_create_stores_a_pending_request(store, clock):
    request = store.create(
        RequestDraft(
            RequestKind.CREATE,
            "sp-app-id",
            "adb-1.azuredatabricks.net",
            "U_REQ",
            "nightly ETL",
            TokenPlan(lifetime="30d", comment="etl", scopes=("sql", "jobs:read")),
            "etl@example.com",
        )
    )
    assert len(request.id) == 10 and request.id.isalnum()
    assert request.state is RequestState.PENDING
    assert request.kind is RequestKind.CREATE
    assert request.created_at == T0 and request.expires_at == T0 + TTL
    plan = TokenPlan(lifetime="30d", comment="etl", scopes=("sql", "jobs:read"))
    assert request.plan == plan
    assert store.get(request.id).plan == plan, "the plan reads back as the same typed value"
    assert request.owner == "etl@example.com"
    assert request.decided_by is None and request.outcome is None and request.admin_ts is None
    assert store.get(request.id) == request
    assert store.pending() == [request]


def test_ids_are_unique(store):
    ids = {new(store, subject=f"tok-{i}").id for i in range(200)}
    assert len(ids) == 200


def test_get_unknown_and_malformed_ids(store):
    with pytest.raises(RequestNotFound) as info:
        store.get("AAAAAAAAAA")
    assert "AAAAAAAAAA" in info.value.user_message
    for bad in ("", "short", "x" * 11, "abc{def}gh", "../../../."):
        with pytest.raises(RequestNotFound):
            store.get(bad)


def test_errors_are_governance_errors_with_user_messages():
    assert issubclass(ApprovalError, GovernanceError)
    err = StoreUnavailable()
    assert err.user_message.startswith("The approvals store is unavailable right now; nothing was changed.")
    assert str(err) == err.user_message


def test_duplicate_pending_request_is_refused(store):
    first = new(store)
    with pytest.raises(DuplicateRequest) as info:
        new(store, requester="U_OTHER")
    assert info.value.existing == first
    assert first.id in info.value.user_message
    assert len(store.pending()) == 1
    assert events(store) == ["created"]
    # nothing of the refused request was left behind
    assert sorted(store._redis.keys(store.request_key("*"))) == [store.request_key(first.id)]
    assert_bookkeeping(store, T0)


def test_duplicate_check_is_per_kind_and_subject(store):
    new(store, subject="tok-a", kind="revoke")
    new(store, subject="tok-a", kind="rotate")
    new(store, subject="tok-b", kind="revoke")
    assert len(store.pending()) == 3


@pytest.mark.parametrize("decision", ["approved", "denied", "cancelled"])
def test_a_decided_request_no_longer_blocks(store, decision):
    first = new(store)
    store.decide(first.id, decision, "U_APP")
    second = new(store)
    assert second.id != first.id
    assert store.pending() == [second]


def test_an_expired_request_no_longer_blocks_even_before_the_sweep(store, clock):
    first = new(store)
    clock.advance(TTL - US)
    with pytest.raises(DuplicateRequest):
        new(store)
    clock.advance(US)
    second = new(store)
    assert store.get(first.id).state is RequestState.PENDING  # not swept yet
    assert [r.id for r in store.expire_due()] == [first.id]
    assert store.pending() == [second]


def test_a_stale_pending_index_does_not_block(store, client):
    first = new(store)
    client.delete(store.request_key(first.id))  # index now points at a request that is gone
    second = new(store)
    assert client.get(store.pending_by_key("revoke", first.subject)) == second.id
    client.set(store.pending_by_key("revoke", "tok-x"), "not-an-id!")
    new(store, subject="tok-x")


def test_a_stale_holder_is_replaced_in_one_step(store, client, clock):
    first = new(store)
    clock.advance(TTL)  # first is past its expiry, not swept: the guard still names it
    second = new(store)
    assert client.get(store.pending_by_key("revoke", first.subject)) == second.id
    assert_bookkeeping(store, clock.now)
    assert [r.id for r in store.expire_due()] == [first.id]
    assert client.get(store.pending_by_key("revoke", first.subject)) == second.id  # not released
    assert_bookkeeping(store, clock.now)


# ----------------------------------------------------------------------------------------- decide


@pytest.mark.parametrize("decision", [RequestState.APPROVED, RequestState.DENIED, RequestState.CANCELLED])
def test_decide_moves_pending_to_the_decision(store, clock, decision):
    request = new(store)
    clock.advance(timedelta(minutes=5))
    transition = store.decide(request.id, decision, "U_APP")
    assert transition.state is decision
    assert transition.request.decided_by == "U_APP"
    assert transition.request.decided_at == T0 + timedelta(minutes=5)
    assert store.get(request.id) == transition.request
    assert store.pending() == []
    assert events(store) == ["created", str(decision)]
    entry = store.audit.entries()[-1]
    assert (entry.actor, entry.requester, entry.subject, entry.kind) == (
        "U_APP",
        "U_REQ",
        request.subject,
        "revoke",
    )


@pytest.mark.parametrize("first", ["approved", "denied", "cancelled"])
@pytest.mark.parametrize("second", ["approved", "denied", "cancelled"])
def test_only_the_first_decision_wins(store, first, second):
    request = new(store)
    store.decide(request.id, first, "U_ONE")
    with pytest.raises(AlreadyDecided) as info:
        store.decide(request.id, second, "U_TWO")
    assert info.value.request.state == first
    assert info.value.request.decided_by == "U_ONE"
    assert "<@U_ONE>" in info.value.user_message
    assert store.get(request.id).state == first
    assert events(store) == ["created", first]


def test_the_same_approver_double_clicking_wins_once(store):
    request = new(store)
    store.decide(request.id, "approved", "U_APP")
    with pytest.raises(AlreadyDecided):
        store.decide(request.id, "approved", "U_APP")


def test_decide_rejects_non_decisions(store):
    request = new(store)
    for bad in ("pending", "expired", "maybe"):
        with pytest.raises(ValueError):
            store.decide(request.id, bad, "U_APP")
    with pytest.raises(ValueError):
        store.decide(request.id, "approved", "")
    assert store.get(request.id).state is RequestState.PENDING


def test_decide_unknown_request(store):
    with pytest.raises(RequestNotFound):
        store.decide("AAAAAAAAAA", "approved", "U_APP")


def test_expiry_boundary_one_microsecond_before(store, clock):
    request = new(store)
    clock.advance(TTL - US)
    assert store.decide(request.id, "approved", "U_APP").state is RequestState.APPROVED


def test_expiry_boundary_exactly_at_expires_at(store, clock):
    request = new(store)
    clock.advance(TTL)
    with pytest.raises(RequestExpired) as info:
        store.decide(request.id, "approved", "U_APP")
    assert info.value.transitioned is True
    assert info.value.request.state is RequestState.EXPIRED
    assert info.value.request.decided_by is None
    with pytest.raises(RequestExpired) as again:
        store.decide(request.id, "denied", "U_OTHER")
    assert again.value.transitioned is False
    assert store.expire_due() == []  # already expired by the click
    assert events(store) == ["created", "expired"]


def test_explicit_now_overrides_the_clock(store):
    request = new(store)
    with pytest.raises(RequestExpired):
        store.decide(request.id, "approved", "U_APP", now=T0 + TTL + timedelta(seconds=1))


def test_naive_datetimes_are_refused(store):
    with pytest.raises(ValueError):
        new(store, now=datetime(2025, 1, 1))


def test_a_retried_transition_is_recognised_as_the_same_call(store, client):
    """A client-level retry (same nonce) of a script that already ran must still report the win, and
    must not do the bookkeeping twice."""
    request = new(store)
    key = store.request_key(request.id)
    keys = [key, store.pending_key, store.in_doubt_key, store.audit.key, client.hget(key, "_guard")]
    args = [request.id, "approved", "U_APP", "1741000000000000", "2025-03-03T11:06:40+00:00", 1000]
    assert store._transition_script(keys=keys, args=[*args, "nonce-1", 100])[0] == "won"
    assert store._transition_script(keys=keys, args=[*args, "nonce-1", 100])[0] == "won"
    assert store._transition_script(keys=keys, args=[*args, "nonce-2", 100])[0] == "already"
    assert events(store) == ["created", "approved"]
    assert_bookkeeping(store, T0)


def test_a_transition_checks_the_guard_it_is_given(store, client):
    request = new(store)
    keys = [store.request_key(request.id), store.pending_key, store.in_doubt_key, store.audit.key]
    other = store.pending_by_key("revoke", "some-other-token")
    args = [request.id, "approved", "U_APP", "1741000000000000", "2025-03-03T11:06:40+00:00", 1000, "n", 100]
    assert store._transition_script(keys=[*keys, other], args=args)[0] == "moved"
    assert store.get(request.id).state is RequestState.PENDING
    assert_bookkeeping(store, T0)


# ------------------------------------------------------------------------------------------ sweep


def test_expire_due_sweeps_exactly_the_due_requests(store, clock):
    a = new(store, subject="tok-a")
    clock.advance(timedelta(hours=1))
    b = new(store, subject="tok-b")
    clock.advance(timedelta(hours=1))
    c = new(store, subject="tok-c")
    store.decide(c.id, "denied", "U_APP")

    clock.now = a.expires_at - US
    assert store.expire_due() == []
    clock.now = a.expires_at
    swept = store.expire_due()
    assert [r.id for r in swept] == [a.id]
    assert swept[0].state is RequestState.EXPIRED and swept[0].decided_at == a.expires_at
    assert store.pending() == [store.get(b.id)]
    clock.now = b.expires_at - US
    assert store.pending() == [store.get(b.id)]
    assert store.expire_due() == []
    clock.now = b.expires_at + timedelta(days=3)
    assert store.pending() == []  # past expiry: hidden before the sweep
    assert [r.id for r in store.expire_due()] == [b.id]
    assert store.expire_due() == []
    assert store.get(c.id).state is RequestState.DENIED
    assert Counter(events(store)) == Counter({"created": 3, "expired": 2, "denied": 1})


def test_the_sweep_drops_the_entry_of_a_request_that_is_gone(store, client, clock):
    a = new(store, subject="tok-a")
    client.delete(store.request_key(a.id))  # as if its keep time had passed without a sweep
    clock.advance(TTL * 2)
    assert store.expire_due() == []
    assert client.zcard(store.pending_key) == 0


def test_pending_lists_soonest_expiry_first(store, client, clock):
    a = new(store, subject="tok-a")
    clock.advance(timedelta(minutes=1))
    b = new(store, subject="tok-b")
    assert [r.id for r in store.pending()] == [a.id, b.id]
    client.delete(store.request_key(a.id))
    assert [r.id for r in store.pending()] == [b.id]


# ------------------------------------------------------------------------------- outcome & message


def test_record_outcome_after_approval(store, clock):
    request = new(store)
    store.decide(request.id, "approved", "U_APP")
    assert [r.id for r in store.in_doubt()] == [request.id]
    assert store.get(request.id).in_doubt
    clock.advance(timedelta(seconds=2))
    done = store.record_outcome(request.id, "revoked", "token already gone")
    assert done.outcome == "revoked" and done.outcome_detail == "token already gone"
    assert done.outcome_at == T0 + timedelta(seconds=2)
    assert done.state is RequestState.APPROVED and not done.in_doubt
    assert store.in_doubt() == []
    last = store.audit.entries()[-1]
    assert (last.event, last.outcome, last.detail, last.actor) == (
        "outcome",
        "revoked",
        "token already gone",
        "U_APP",
    )


def test_record_outcome_is_idempotent_first_write_wins(store, caplog):
    request = new(store)
    store.decide(request.id, "approved", "U_APP")
    store.record_outcome(request.id, "revoked")
    assert store.record_outcome(request.id, "revoked").outcome == "revoked"
    with caplog.at_level(logging.WARNING, logger="bot.approvals"):
        assert store.record_outcome(request.id, "failed", "boom").outcome == "revoked"
    assert "already has outcome" in caplog.text
    assert events(store) == ["created", "approved", "outcome"]


@pytest.mark.parametrize("decision", ["denied", "cancelled", None, "expired"])
def test_record_outcome_needs_an_approved_request(store, clock, decision):
    request = new(store)
    if decision == "expired":
        clock.advance(TTL)
        store.expire_due()
    elif decision:
        store.decide(request.id, decision, "U_APP")
    with pytest.raises(InvalidTransition):
        store.record_outcome(request.id, "revoked")
    with pytest.raises(RequestNotFound):
        store.record_outcome("AAAAAAAAAA", "revoked")


def test_attach_message(store, clock):
    request = new(store)
    attached = store.attach_message(request.id, "C_ADMIN", "1712345678.000100")
    assert (attached.admin_channel, attached.admin_ts) == ("C_ADMIN", "1712345678.000100")
    assert store.get(request.id) == attached
    store.decide(request.id, "approved", "U_APP")
    assert store.get(request.id).admin_ts == "1712345678.000100"
    with pytest.raises(RequestNotFound):
        store.attach_message("AAAAAAAAAA", "C", "1.2")


def test_retention_of_request_hashes(store, client, clock):
    pending = new(store, subject="tok-a")
    key = store.request_key(pending.id)
    assert client.pttl(key) > TTL // timedelta(milliseconds=1)
    store.decide(pending.id, "approved", "U_APP")
    assert client.pttl(key) == -1  # in doubt: kept until the outcome is known
    store.record_outcome(pending.id, "revoked")
    assert 0 < client.pttl(key) <= store.retention // timedelta(milliseconds=1)
    denied = new(store, subject="tok-b")
    store.decide(denied.id, "denied", "U_APP")
    assert 0 < client.pttl(store.request_key(denied.id)) <= store.retention // timedelta(milliseconds=1)


def test_key_layout_puts_every_key_under_one_hash_tag(store, client):
    request = new(store)
    store.decide(request.id, "approved", "U_APP")
    second = new(store)
    guard = f"{{patbot}}:pending-by:revoke:{request.subject}"
    assert set(client.keys("*")) == {
        f"{{patbot}}:req:{request.id}",
        f"{{patbot}}:req:{second.id}",
        guard,
        "{patbot}:pending",
        "{patbot}:in-doubt",
        "{patbot}:audit",
    }
    assert client.hget(store.request_key(second.id), "_guard") == guard
    other = ApprovalStore(client, ttl=TTL, prefix="other")
    assert (other.request_key("x"), other.audit.key) == ("{other}:req:x", "{other}:audit")
    for bad in ("", "a{b", "c}"):
        with pytest.raises(ValueError):
            ApprovalStore(client, ttl=TTL, prefix=bad)


def test_works_with_a_bytes_client(server, clock):
    store = ApprovalStore(fakeredis.FakeRedis(server=server), ttl=TTL, clock=clock)
    request = new(store)
    assert store.get(request.id) == request
    assert store.decide(request.id, "approved", "U_APP").state is RequestState.APPROVED
    assert store.record_outcome(request.id, "revoked").outcome == "revoked"
    assert [e.event for e in store.audit.entries()] == ["created", "approved", "outcome"]


# ------------------------------------------------------------------------------------------- audit


def test_audit_entries_oldest_first_and_latest_n(store):
    for i in range(5):
        new(store, subject=f"tok-{i}")
    entries = store.audit.entries()
    assert [e.subject for e in entries] == [f"tok-{i}" for i in range(5)]
    assert [e.subject for e in store.audit.entries(count=2)] == ["tok-3", "tok-4"]
    first = entries[0]
    assert (
        first.event == AuditEvent.CREATED
        and first.time == T0
        and first.workspace == "adb-1.azuredatabricks.net"
    )
    assert first.reason == "left the team" and first.actor == "U_REQ" and first.outcome is None


def test_audit_log_is_capped(client, clock):
    store = ApprovalStore(client, ttl=TTL, clock=clock, audit=AuditLog(client, maxlen=50))
    for i in range(300):
        new(store, subject=f"tok-{i}")
    assert 50 <= len(store.audit.entries()) < 300


# -------------------------------------------------------------------------------------- atomicity

# (operation, a bookkeeping key it must write besides the request hash)
WRITES = [
    (op, key)
    for op, keys in {
        "create": ["pending", "guard", "audit"],
        "approve": ["pending", "in-doubt", "guard", "audit"],
        "deny": ["pending", "in-doubt", "guard", "audit"],
        "expire-on-click": ["pending", "in-doubt", "guard", "audit"],
        "sweep": ["pending", "in-doubt", "guard", "audit"],
        "outcome": ["in-doubt", "audit"],
    }.items()
    for key in keys
]


@pytest.mark.parametrize(("op", "which"), WRITES)
def test_a_transition_that_cannot_write_its_bookkeeping_changes_nothing(store, client, clock, op, which):
    """Redis does not roll back a script that fails half-way: the scripts must check before writing."""
    claimed = new(store, subject="tok-claimed")
    store.decide(claimed.id, "approved", "U_APP")  # in doubt: the outcome has something to record
    request = claimed if op == "outcome" else new(store, subject="tok-a")
    if op in ("expire-on-click", "sweep"):
        clock.advance(TTL)
    keys = {
        "pending": store.pending_key,
        "in-doubt": store.in_doubt_key,
        "audit": store.audit.key,
        "guard": store.pending_by_key("revoke", "tok-new" if op == "create" else request.subject),
    }
    clobber(client, keys[which])
    before = snapshot(client)
    call = {
        "create": lambda: new(store, subject="tok-new"),
        "approve": lambda: store.decide(request.id, "approved", "U_APP"),
        "deny": lambda: store.decide(request.id, "denied", "U_APP"),
        "expire-on-click": lambda: store.decide(request.id, "approved", "U_APP"),
        "sweep": store.expire_due,
        "outcome": lambda: store.record_outcome(request.id, "revoked"),
    }[op]
    with pytest.raises(StoreUnavailable) as info:
        call()
    assert "nothing was changed" in info.value.user_message
    assert snapshot(client) == before


# ------------------------------------------------------------------------------------ unavailable


def test_store_unavailable_changes_nothing(store, server, client):
    request = new(store)
    before = {k: client.type(k) for k in client.keys("*")}
    audit_len = client.xlen(store.audit.key)
    server.connected = False
    for call in (
        lambda: new(store, subject="tok-other"),
        lambda: store.decide(request.id, "approved", "U_APP"),
        lambda: store.get(request.id),
        lambda: store.pending(),
        lambda: store.expire_due(),
        lambda: store.record_outcome(request.id, "revoked"),
        lambda: store.attach_message(request.id, "C", "1.1"),
        lambda: store.audit.entries(),
    ):
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert "nothing was changed" in info.value.user_message
    server.connected = True
    assert {k: client.type(k) for k in client.keys("*")} == before
    assert client.xlen(store.audit.key) == audit_len
    assert store.get(request.id).state is RequestState.PENDING
    assert store.decide(request.id, "approved", "U_APP").state is RequestState.APPROVED


# ---------------------------------------------------------------------------------- connect_redis


def test_connect_redis_embedded_has_lua():
    client, embedded = connect_redis(None)
    assert embedded is True
    assert client.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "v") == "OK"
    store = ApprovalStore(client, ttl=TTL)
    request = new(store)
    assert store.decide(request.id, "approved", "U_APP").state is RequestState.APPROVED
    assert connect_redis("  ")[1] is True


def test_connect_redis_real_url_is_lazy():
    client, embedded = connect_redis("redis://127.0.0.1:1/0")
    assert embedded is False
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["decode_responses"] is True
    assert kwargs["socket_timeout"] == 2.0 and kwargs["socket_connect_timeout"] == 2.0
    assert kwargs["health_check_interval"] > 0
    store = ApprovalStore(client, ttl=TTL)
    with pytest.raises(StoreUnavailable):
        store.get("AAAAAAAAAA")
    assert connect_redis("rediss://example.invalid:6380/0")[1] is False


@pytest.mark.parametrize("url", ["http://localhost:6379", "localhost:6379", "memory://"])
def test_connect_redis_refuses_other_schemes(url):
    with pytest.raises(ConfigError) as info:
        connect_redis(url)
    assert "REDIS_URL" in info.value.user_message


# ------------------------------------------------------------------------------ stateful property


ACTORS = ["U1", "U2", "U3"]
SUBJECTS = ["tok-a", "tok-b"]


class ApprovalMachine(RuleBasedStateMachine):
    """Random clicks, creates, clock moves, sweeps and outcomes against a simple model."""

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.client = fakeredis.FakeRedis(decode_responses=True)
        self.store = ApprovalStore(self.client, ttl=TTL, clock=self.clock)
        self.model: dict[str, ApprovalRequest] = {}
        self.state: dict[str, RequestState] = {}
        self.wins: Counter[str] = Counter()
        self.outcome: dict[str, str] = {}

    def live(self, request_id: str) -> bool:
        return (
            self.state[request_id] is RequestState.PENDING
            and self.clock.now < self.model[request_id].expires_at
        )

    @rule(target=requests, kind=st.sampled_from(list(RequestKind)), subject=st.sampled_from(SUBJECTS),
          requester=st.sampled_from(ACTORS))  # fmt: skip
    def create(self, kind, subject, requester):
        blocking = [
            i for i, r in self.model.items() if r.kind == kind and r.subject == subject and self.live(i)
        ]
        try:
            request = self.store.create(RequestDraft(kind, subject, "h", requester, "why"))
        except DuplicateRequest as dup:
            assert [dup.existing.id] == blocking
            return dup.existing.id
        assert blocking == []
        self.model[request.id] = request
        self.state[request.id] = RequestState.PENDING
        return request.id

    @rule(request_id=requests, decision=st.sampled_from(["approved", "denied", "cancelled"]),
          actor=st.sampled_from(ACTORS))  # fmt: skip
    def click(self, request_id, decision, actor):
        was_live, was_pending = self.live(request_id), self.state[request_id] is RequestState.PENDING
        try:
            transition = self.store.decide(request_id, decision, actor)
        except RequestExpired as exc:
            assert not was_live
            assert self.clock.now >= self.model[request_id].expires_at
            assert exc.transitioned == was_pending
            self.state[request_id] = RequestState.EXPIRED
            return
        except AlreadyDecided as exc:
            assert not was_pending
            assert exc.request.state is self.state[request_id]
            return
        assert was_live
        self.wins[request_id] += 1
        self.state[request_id] = transition.state
        assert transition.request.decided_by == actor

    @rule(delta=st.sampled_from([US, timedelta(minutes=30), timedelta(hours=6), TTL - US, TTL]))
    def tick(self, delta):
        self.clock.advance(delta)

    @rule(request_id=requests, offset=st.sampled_from([-US, timedelta(0), US]))
    def jump_to_expiry(self, request_id, offset):
        target = self.model[request_id].expires_at + offset
        if target > self.clock.now:
            self.clock.now = target

    @rule()
    def sweep(self):
        due = {i for i, s in self.state.items() if s is RequestState.PENDING and not self.live(i)}
        swept = self.store.expire_due()
        assert {r.id for r in swept} == due
        for request in swept:
            assert request.state is RequestState.EXPIRED
            self.state[request.id] = RequestState.EXPIRED

    @rule(request_id=requests, outcome=st.sampled_from(["revoked", "failed"]))
    def record(self, request_id, outcome):
        try:
            stored = self.store.record_outcome(request_id, outcome)
        except InvalidTransition:
            assert self.state[request_id] is not RequestState.APPROVED
            return
        assert self.state[request_id] is RequestState.APPROVED
        self.outcome.setdefault(request_id, outcome)
        assert stored.outcome == self.outcome[request_id]

    @rule(request_id=requests, op=st.sampled_from(["approved", "denied", "record", "create"]),
          which=st.sampled_from(["pending", "in-doubt", "guard", "audit"]))  # fmt: skip
    def fail_half_way(self, request_id, op, which):
        """Any transition whose script would fail on a write changes nothing at all."""
        request = self.model[request_id]
        if (op, which) in {("record", "pending"), ("record", "guard"), ("create", "in-doubt")}:
            return  # that operation does not write that key
        key = {
            "pending": self.store.pending_key,
            "in-doubt": self.store.in_doubt_key,
            "guard": self.store.pending_by_key(request.kind, request.subject),
            "audit": self.store.audit.key,
        }[which]
        before = snapshot(self.client)
        saved = {k: v for k, v in before.items() if k == key}
        clobber(self.client, key)
        clobbered = snapshot(self.client)
        with pytest.raises(StoreUnavailable):
            if op == "record":
                self.store.record_outcome(request_id, "revoked")
            elif op == "create":
                self.store.create(RequestDraft(request.kind, request.subject, "h", "U1", "why"))
            else:
                self.store.decide(request_id, op, "U1")
        assert snapshot(self.client) == clobbered
        self.client.delete(key)
        for value in saved.values():
            restore(self.client, key, value)
        assert snapshot(self.client) == before

    @invariant()
    def bookkeeping_matches_the_hashes(self):
        assert_bookkeeping(self.store, self.clock.now)

    @invariant()
    def store_matches_model(self):
        for request_id, state in self.state.items():
            stored = self.store.get(request_id)
            assert stored.state is state
            assert stored.outcome == self.outcome.get(request_id)
        live = sorted(i for i in self.state if self.live(i))
        assert sorted(r.id for r in self.store.pending()) == live

    @invariant()
    def at_most_one_winner(self):
        assert all(count <= 1 for count in self.wins.values())

    @invariant()
    def audit_log_is_consistent(self):
        per_request: dict[str, list] = defaultdict(list)
        for entry in self.store.audit.entries():
            per_request[entry.request_id].append(entry)
        assert set(per_request) == set(self.model)
        for request_id, entries in per_request.items():
            names = [e.event for e in entries]
            state = self.state[request_id]
            expected = ["created"] + ([] if state is RequestState.PENDING else [str(state)])
            if request_id in self.outcome:
                expected.append("outcome")
            assert names == expected
            if state is RequestState.EXPIRED:
                assert entries[1].time >= self.model[request_id].expires_at  # expired only after the TTL
            elif len(entries) > 1:
                assert entries[1].time < self.model[request_id].expires_at
                assert entries[1].actor is not None


ApprovalMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestApprovalMachine = ApprovalMachine.TestCase
