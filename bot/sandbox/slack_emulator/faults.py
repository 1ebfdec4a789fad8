"""Injected faults: 429 with ``Retry-After``, ``ok: false`` errors, latency, per-method token buckets."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bot.sandbox.slack_emulator.args import text_reply
from bot.sandbox.slack_emulator.records import Args, WebResponse
from bot.sandbox.slack_emulator.state import EmulatorState


@dataclass
class _RateLimitFault:
    remaining: int | None
    every: int | None
    retry_after: int
    seen: int = 0


@dataclass
class _FailFault:
    error: str
    remaining: int | None
    status: int


@dataclass
class _Bucket:
    capacity: float
    rate: float  # tokens per emulated second
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token; 0.0 when granted, else emulated seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


Fault = tuple[int, str, int | None, float | None]  # status, error, Retry-After, exact Retry-After


class FaultsMixin(EmulatorState):
    """Fault injection, applied by every endpoint before it answers."""

    _rate_faults: dict[str, _RateLimitFault]
    _fail_faults: dict[str, _FailFault]
    _buckets: dict[str, _Bucket]
    _latencies: dict[str, float]

    def _init_faults(self) -> None:
        self._rate_faults = {}
        self._fail_faults = {}
        self._buckets = {}
        self._latencies = {}

    def rate_limit(
        self, method: str, times: int | None = None, every: int | None = None, retry_after: int = 1
    ) -> None:
        """Answer *method* with HTTP 429 + ``Retry-After`` (body ``ratelimited``).

        For the next *times* calls, or every *every*-th call from now on, or (neither given)
        every call until :meth:`reset_faults`. Replaces an earlier ``rate_limit`` on *method*.
        """
        if times is not None and every is not None:
            raise ValueError("give times or every, not both")
        with self._lock:
            self._rate_faults[method] = _RateLimitFault(times, every, retry_after)

    def set_rate_limit(self, method: str, per_minute: float, burst: int | None = None) -> None:
        """A token bucket for *method*: *per_minute* calls per emulated minute, *burst* at once.

        *burst* defaults to one second's worth (at least 1). An empty bucket answers 429 with
        ``Retry-After`` = emulated seconds until the next token, rounded up (at least 1), and the
        exact value in ``X-Emulator-Retry-After``.
        """
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        capacity = float(burst if burst is not None else max(1, math.ceil(per_minute / 60)))
        with self._lock:
            self._buckets[method] = _Bucket(capacity, per_minute / 60.0, capacity, self.now())

    def fail(
        self, method: str, error: str = "internal_error", times: int | None = 1, status: int = 200
    ) -> None:
        """Answer the next *times* calls of *method* (all, with ``None``) with ``ok: false``.

        *method* may also be ``"upload"`` or ``"response_url"``; those answer *status*
        (500 when left at 200) with *error* as text.
        """
        with self._lock:
            self._fail_faults[method] = _FailFault(error, times, status)

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every answer (or *method*'s) by *seconds* of emulated time."""
        with self._lock:
            if method is None:
                self.latency = seconds
            else:
                self._latencies[method] = seconds

    def reset_faults(self) -> None:
        """Remove every injected fault, token bucket and latency."""
        with self._lock:
            self._rate_faults.clear()
            self._fail_faults.clear()
            self._buckets.clear()
            self._latencies.clear()
            self.latency = 0.0

    def _delay(self, method: str) -> None:
        with self._lock:
            seconds = self._latencies.get(method, self.latency)
        self.sleep(seconds)

    def _fault(self, method: str) -> Fault | None:
        """(status, error, retry_after, exact_retry_after) of an injected fault, if one applies."""
        fault = self._rate_faults.get(method)
        if fault is not None:
            fault.seen += 1
            if fault.every is not None:
                hit = fault.seen % fault.every == 0
            elif fault.remaining is not None:
                hit = fault.remaining > 0
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._rate_faults[method]
            else:
                hit = True
            if hit:
                return 429, "ratelimited", fault.retry_after, None
        bucket = self._buckets.get(method)
        if bucket is not None:
            wait = bucket.take(self.now())
            if wait > 0:
                return 429, "ratelimited", max(1, math.ceil(wait)), wait
        failure = self._fail_faults.get(method)
        if failure is not None:
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._fail_faults[method]
            return failure.status, failure.error, None, None
        return None

    def _text_fault(self, method: str, args: Args) -> WebResponse | None:
        """An injected fault for a non-API endpoint, answered as text (ok:false errors become 500)."""
        fault = self._fault(method)
        if fault is None:
            return None
        status, error, retry_after, _ = fault
        status = 500 if status == 200 else status
        self._record(method, args, status, error)
        reply = text_reply(error, status)
        if retry_after is not None:
            reply = replace(reply, headers=(("Retry-After", str(retry_after)),))
        return reply
