"""The pace of the reminder DMs: one shared rate that 429s slow down and successes restore.

Every DM goes through one shared pacer (evenly spaced at the expected rate of ``chat.postMessage``);
a 429 pauses every worker for its ``Retry-After`` and slows the pace a little, then the pace climbs
back. Nothing is dropped: a rate-limited DM is retried until Slack accepts it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_RATE_PER_MINUTE = 600.0
"""Expected ``chat.postMessage`` budget of one app. Slack documents 1 message per second *per
channel* (every DM is its own channel) and an unpublished app-wide ceiling of several hundred per
minute; 600/min is the pacer's starting point, and 429s slow it down to whatever Slack allows."""


class RatePacer:
    """Spaces calls evenly at a shared rate; a 429 pauses every caller and slows the pace (AIMD)."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        floor_per_minute: float = 6.0,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self._max = per_minute / 60.0
        self._floor = min(self._max, floor_per_minute / 60.0)
        self._rate = self._max
        self._clock = clock
        self._sleep = sleep
        self._next = clock()
        self._paused_until = float("-inf")
        self._epoch = 0
        self._lock = threading.Lock()

    @property
    def per_minute(self) -> float:
        """The current pace."""
        with self._lock:
            return self._rate * 60.0

    def wait(self) -> None:
        """Block until this caller's slot; a 429 seen meanwhile sends it to the back of the pause."""
        while True:
            with self._lock:
                now = self._clock()
                slot = max(now, self._next)
                self._next = slot + 1.0 / self._rate
                epoch = self._epoch
            if slot > now:
                self._sleep(slot - now)
            with self._lock:
                if epoch == self._epoch:
                    return

    def succeeded(self) -> None:
        """Additive increase, back towards the configured pace."""
        with self._lock:
            self._rate = min(self._max, self._rate + self._max / 50.0)

    def rate_limited(self, seconds: float) -> None:
        """Pause everyone for `seconds`; slow down once per pause (several 429s in flight count once)."""
        with self._lock:
            now = self._clock()
            if now >= self._paused_until:
                self._rate = max(self._floor, self._rate * 0.8)
            self._paused_until = max(self._paused_until, now + seconds)
            self._next = self._paused_until
            self._epoch += 1
