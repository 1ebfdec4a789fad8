"""What tests read back: the recorded calls, waiting for them, and forgetting the traffic."""

from __future__ import annotations

import time

from bot.sandbox.slack_emulator.records import RecordedCall
from bot.sandbox.slack_emulator.state import EmulatorState


class RecordingMixin(EmulatorState):
    """Every request is recorded (``_record``, on the state); these read the record."""

    def calls(self, method: str | None = None, *, ok_only: bool = False) -> list[RecordedCall]:
        """Recorded calls, oldest first; optionally of one method, or only successful ones."""
        with self._lock:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method) and not (ok_only and (c.error or c.status != 200))
            ]

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[RecordedCall]:
        """Block until *method* has been called *count* times (real-time *timeout*)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.calls(method)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method}: {len(found)} of {count} calls after {timeout}s")
                self._changed.wait(left)
            return found

    def clear(self) -> None:
        """Forget recorded traffic (calls, messages, ephemerals, views, uploads, response posts).

        Users, groups, DM channels and faults stay.
        """
        with self._lock:
            self._calls.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._views.clear()
            self._files.clear()
            self._response_posts.clear()
        if self._socket is not None:
            self._socket.clear()
