"""Prometheus metrics of one app instance (its own registry, no module-level globals)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.approvals import ApprovalError
from bot.flows.health import RequestCounts

log = logging.getLogger(__name__)


def patbot_version() -> str:
    """The installed package's version (``unknown`` when run from an uninstalled tree)."""
    try:
        return version("patbot")
    except PackageNotFoundError:
        return "unknown"


class RequestGauges(Collector):
    """Pending and in-doubt approval requests, read from the store at scrape time.

    When Redis does not answer, the two gauges are left out of that scrape (absent, not zero).
    """

    def __init__(self, counts: Callable[[], RequestCounts]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            counts = self.counts()
            pending, in_doubt = counts.pending, counts.in_doubt
        except ApprovalError as exc:
            log.warning("metrics: approval store unavailable (%s)", type(exc).__name__)
            return []
        return [
            GaugeMetricFamily(
                "patbot_pending_requests", "Approval requests waiting for a decision", value=pending
            ),
            GaugeMetricFamily(
                "patbot_in_doubt_requests",
                "Approved requests without a recorded outcome (being acted on, or interrupted by a crash)",
                value=in_doubt,
            ),
        ]


class Metrics:
    """Requests and latency per command/action, and API errors by service."""

    def __init__(self, counts: Callable[[], RequestCounts] | None = None) -> None:
        self.registry = CollectorRegistry()
        # The standard process, platform and GC metrics, on this registry rather than the global one.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        Info("patbot_build", "The running patbot", registry=self.registry).info({"version": patbot_version()})
        if counts is not None:
            self.registry.register(RequestGauges(counts))
        self.requests = Counter(
            "patbot_requests_total", "Slack requests handled", ("kind", "name"), registry=self.registry
        )
        self.latency = Histogram(
            "patbot_ack_seconds",
            "Time to acknowledge a Slack request",
            ("kind", "name"),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.databricks_errors = Counter(
            "patbot_databricks_errors_total", "Databricks API failures", ("error",), registry=self.registry
        )
        self.slack_errors = Counter(
            "patbot_slack_api_errors_total", "Slack Web API failures", ("error",), registry=self.registry
        )

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def middleware(self, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> Any:
        """Bolt global middleware: count and time the ack path of every request."""
        kind, name = request_label(req.body)
        start = time.perf_counter()
        try:
            return next()
        finally:
            self.requests.labels(kind, name).inc()
            self.latency.labels(kind, name).observe(time.perf_counter() - start)


def request_label(body: dict[str, Any]) -> tuple[str, str]:
    """A low-cardinality (kind, name) for a Slack payload."""
    if "command" in body:
        sub = (body.get("text") or "").strip().split(" ", 1)[0].lower() or "help"
        known = {"help", "audit", "revoke", "create", "rotate", "policy"}
        return "command", sub if sub in known else "other"
    if body.get("type") == "block_actions":
        actions = body.get("actions") or [{}]
        return "action", str(actions[0].get("action_id", "unknown"))[:40]
    if body.get("type") == "event_callback":
        return "event", str((body.get("event") or {}).get("type", "unknown"))[:40]
    return "other", str(body.get("type", "unknown"))[:40]
