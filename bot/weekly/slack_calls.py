"""Calling Slack from the weekly job: waiting out 429s, counting calls, naming Slack's answers."""

from __future__ import annotations

import copy
import logging
import threading
import time
import urllib.error
from collections.abc import Callable
from typing import TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import GovernanceError

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


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asks us to wait for a 429 (1 when unstated), or None for any other error."""
    response = exc.response
    if response.status_code != 429 and response.get("error") not in ("ratelimited", "rate_limited"):
        return None
    headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code, such as ``not_in_channel``, or the HTTP status without one."""
    return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")


def call_slack(
    call: Callable[[], T],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    calls: CallTally | None = None,
    max_attempts: int = 10,
) -> T:
    """One Slack call, waiting out 429s (``Retry-After``); connection failures become `SlackUnavailable`."""
    attempt = 0
    while True:
        attempt += 1
        if calls is not None:
            calls.add()
        try:
            return call()
        except SlackApiError as exc:
            wait = retry_after(exc)
            if wait is None or attempt >= max_attempts:
                raise
            log.info("slack %s rate limited; retrying in %.1f s", what, wait)
            sleep(wait)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SlackUnavailable(f"cannot reach Slack for {what} ({reason})") from None


def without_retry_handlers(client: WebClient) -> WebClient:
    """A copy of `client` that never retries on its own."""
    # The campaign handles 429s itself (to pace every worker and keep leases alive) and must not
    # resend a DM after an ambiguous connection error, which the SDK's default handler would.
    clone = copy.copy(client)
    clone.retry_handlers = []
    return clone
