"""The Slack surface: thin listeners and pure Block Kit rendering."""

from __future__ import annotations

from slack_bolt import App

from handlers.approvals import register_approvals
from handlers.commands import register_commands
from handlers.context import SlackContext
from handlers.home import register_home


def register(app: App, ctx: SlackContext) -> None:
    """Wire every listener of the app in one place."""
    app.use(ctx.metrics.middleware)
    register_commands(app, ctx)
    register_home(app, ctx)
    register_approvals(app, ctx)
