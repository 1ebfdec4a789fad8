"""The Slack surface: thin listeners and pure Block Kit rendering."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App, BoltResponse

from handlers.approvals import register_approvals
from handlers.commands import register_commands
from handlers.context import SlackContext
from handlers.home import register_home

log = logging.getLogger(__name__)

_ANYTHING = re.compile(".*")


def register(app: App, ctx: SlackContext) -> None:
    """Wire every listener of the app in one place."""
    app.use(ctx.metrics.middleware)
    register_commands(app, ctx)
    register_home(app, ctx)
    register_approvals(app, ctx)

    # Registered last: Bolt runs the first matching listener, so these only see what nobody else wants.
    # Stale buttons from old messages or forged payloads are acknowledged and ignored, never a 404.
    @app.action(_ANYTHING)
    def ignore_action(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        actions = body.get("actions") or [{}]
        log.info("ignored unknown action %r", str(actions[0].get("action_id", ""))[:60])

    @app.view(_ANYTHING)
    def ignore_view(ack: Ack) -> None:
        ack()

    @app.error
    def answer_errors(error: Exception) -> BoltResponse:
        # Only a malformed (but signed) payload reaches here: listeners ack at once and work lazily.
        # Acknowledge it so Slack does not retry, and keep the trace in our logs only.
        log.warning("could not handle a Slack request: %s", type(error).__name__, exc_info=error)
        return BoltResponse(status=200, body="")
