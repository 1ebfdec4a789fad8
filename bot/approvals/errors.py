"""The approval errors (each with a ``user_message`` safe to show in Slack), and the one place that
maps "Redis is not answering" (or a key of the wrong type) onto :class:`StoreUnavailable`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis.exceptions

from bot.approvals.models import ApprovalRequest, RequestKind, RequestState
from bot.errors import GovernanceError

# The package's logger name, unchanged by the split into modules.
log = logging.getLogger("bot.approvals")


class ApprovalError(GovernanceError):
    """Base of the approval errors; ``user_message`` is safe to show to a Slack user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class StoreUnavailable(ApprovalError):
    """Redis could not be reached (connection refused, timeout, read-only replica, loading ...)."""

    DEFAULT_MESSAGE = (
        "The approvals store is unavailable right now; nothing was changed. Try again in a minute."
    )

    def __init__(self, user_message: str = DEFAULT_MESSAGE) -> None:
        super().__init__(user_message)


class RequestNotFound(ApprovalError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"I can't find approval request `{request_id}`; it may have been cleaned up.")
        self.request_id = request_id


class DuplicateRequest(ApprovalError):
    """A pending, unexpired request of the same kind for the same subject already exists."""

    def __init__(self, existing: ApprovalRequest) -> None:
        super().__init__(
            f"A {existing.kind} request for {_short_subject(existing)} is already pending "
            f"(request `{existing.id}` by <@{existing.requester}>, expires {_fmt(existing.expires_at)})."
        )
        self.existing = existing


def _short_subject(request: ApprovalRequest) -> str:
    """Token IDs are shown as their first 12 characters; other subjects as they are."""
    if request.kind in (RequestKind.REVOKE, RequestKind.ROTATE, RequestKind.SCOPE):
        return f"token `{request.subject[:12]}`"
    return request.subject


class AlreadyDecided(ApprovalError):
    """Raised to every caller of ``decide`` but the one that moved the request out of ``pending``."""

    def __init__(self, request: ApprovalRequest) -> None:
        if request.state is RequestState.EXPIRED:
            text = f"This request already expired ({_fmt(request.expires_at)}); nothing was done."
        else:
            by = f" by <@{request.decided_by}>" if request.decided_by else ""
            when = f" at {_fmt(request.decided_at)}" if request.decided_at else ""
            text = f"This request was already {request.state}{by}{when}; nothing more was done."
        super().__init__(text)
        self.request = request


class RequestExpired(ApprovalError):
    """The request's TTL has passed. ``transitioned`` is True when *this* call moved it to ``expired``
    (the caller should then update the admin message, like after :meth:`ApprovalStore.expire_due`)."""

    def __init__(self, request: ApprovalRequest, transitioned: bool) -> None:
        super().__init__(
            f"This request expired at {_fmt(request.expires_at)}; nothing was done. "
            "Ask again if it is still needed."
        )
        self.request = request
        self.transitioned = transitioned


class InvalidTransition(ApprovalError):
    """``record_outcome`` on a request that was not approved."""

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(f"Request `{request.id}` is {request.state}; no outcome can be recorded for it.")
        self.request = request


_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    ConnectionError,  # builtin: socket-level errors that escape redis-py
    TimeoutError,
)


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Map every "Redis is not answering" error onto :class:`StoreUnavailable`, and so a key of the
    store holding the wrong type: reads fail on it, and the scripts check every key's type before
    their first write, so nothing was changed."""
    try:
        yield
    except _UNAVAILABLE_ERRORS as exc:
        raise StoreUnavailable() from exc
    except redis.exceptions.ResponseError as exc:
        if not str(exc).startswith("WRONGTYPE"):
            raise
        log.error("approvals store: a key holds the wrong type; nothing was changed: %s", exc)
        raise StoreUnavailable() from exc


def _fmt(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if dt else "?"
