"""One place where failures become short, safe messages for Slack users."""

from __future__ import annotations

import logging
import urllib.error
import uuid

from slack_sdk.errors import SlackApiError

from bot.databricks import DatabricksError
from bot.errors import GovernanceError
from handlers.metrics import Metrics

log = logging.getLogger(__name__)


def user_message(exc: BaseException, metrics: Metrics | None = None) -> str:
    """What to tell the user about `exc`; unexpected failures are logged with a reference."""
    if isinstance(exc, DatabricksError) and metrics is not None:
        metrics.databricks_errors.labels(type(exc).__name__).inc()
    if isinstance(exc, GovernanceError):
        return exc.user_message
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "unknown_error"))
        if metrics is not None:
            metrics.slack_errors.labels(error).inc()
        log.warning("Slack API error: %s", error)
        return f"Slack refused a call patbot needed ({error}). Nothing was changed; try again shortly."
    if isinstance(exc, TimeoutError | urllib.error.URLError | ConnectionError):
        # slack_sdk raises these (not SlackApiError) when Slack is slow or unreachable.
        if metrics is not None:
            metrics.slack_errors.labels("timeout" if isinstance(exc, TimeoutError) else "unreachable").inc()
        log.warning("Slack API unreachable: %s", type(exc).__name__)
        return "Slack did not answer in time. Nothing was changed; try again shortly."
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected failure (ref %s)", ref, exc_info=exc)
    return f"Something went wrong inside patbot (ref {ref}). Nothing was changed; an admin can find it in the logs."


def note_failure(exc: BaseException, metrics: Metrics | None = None) -> None:
    """Count and log a failure nobody needs to be told about (the message itself is not used)."""
    user_message(exc, metrics)
