"""Calling the chat platform from the weekly job: waiting out rate limits, counting calls."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from bot.errors import GovernanceError
from bot.weekly.chat import ChatNoAnswer, ChatNotSent, ChatRefused

log = logging.getLogger(__name__)

T = TypeVar("T")


class SlackUnavailable(GovernanceError):
    """Slack could not be reached, or refused a call the job cannot do without."""


class CallTally:
    """A thread-safe counter of Slack API calls."""

    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._n += n

    @property
    def value(self) -> int:
        with self._lock:
            return self._n


def call_slack(
    call: Callable[[], T],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    calls: CallTally | None = None,
    max_attempts: int = 10,
) -> T:
    """One chat call, waiting out rate limits (``Retry-After``); a call that got no answer, or never left,
    becomes `SlackUnavailable`; any other refusal (`ChatRefused`) is raised as it is."""
    attempt = 0
    while True:
        attempt += 1
        if calls is not None:
            calls.add()
        try:
            return call()
        except ChatRefused as exc:
            wait = exc.retry_after
            if wait is None or attempt >= max_attempts:
                raise
            log.info("slack %s rate limited; retrying in %.1f s", what, wait)
            sleep(wait)
        except (ChatNotSent, ChatNoAnswer) as exc:
            raise SlackUnavailable(f"cannot reach Slack for {what} ({exc})") from None
