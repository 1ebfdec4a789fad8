"""/metrics on a fresh process: process and platform metrics, build info, pending and in-doubt gauges."""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import version

import fakeredis
import redis
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.approvals import ApprovalStore, RequestDraft, RequestKind, RequestState
from bot.flows.health import request_counts
from handlers.metrics import Metrics


def samples(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_a_fresh_registry_has_process_metrics_and_build_info() -> None:
    got = samples(Metrics())
    assert got["process_start_time_seconds"][0][1] > 0
    assert got["process_resident_memory_bytes"][0][1] > 0
    assert "python_info" in got
    assert got["patbot_build_info"] == [({"version": version("patbot")}, 1.0)]
    assert "patbot_pending_requests" not in got, "no store, no gauges"


def test_pending_and_in_doubt_are_read_from_the_store_at_scrape_time() -> None:
    store = ApprovalStore(fakeredis.FakeRedis(decode_responses=True), ttl=timedelta(hours=1))
    metrics = Metrics(lambda: request_counts(store))
    assert samples(metrics)["patbot_pending_requests"] == [({}, 0.0)]
    first = store.create(RequestDraft(RequestKind.REVOKE, "a" * 32, "https://ws", "UREQ1"))
    store.create(RequestDraft(RequestKind.REVOKE, "b" * 32, "https://ws", "UREQ1"))
    store.decide(first.id, RequestState.APPROVED, "UAPP1")  # claimed, no outcome yet: in doubt
    got = samples(metrics)
    assert got["patbot_pending_requests"] == [({}, 1.0)]
    assert got["patbot_in_doubt_requests"] == [({}, 1.0)]
    store.record_outcome(first.id, "revoked")
    assert samples(metrics)["patbot_in_doubt_requests"] == [({}, 0.0)]


def test_an_unreachable_store_leaves_the_gauges_out_not_the_scrape() -> None:
    dead = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0), decode_responses=True)
    dead_store = ApprovalStore(dead, ttl=timedelta(hours=1))
    got = samples(Metrics(lambda: request_counts(dead_store)))
    assert "patbot_pending_requests" not in got and "patbot_build_info" in got
