"""The App Home tab: the user's own tokens and findings, each with a Revoke button."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.flows.audit import own_tokens
from bot.flows.results import Refused
from handlers.blocks import home_view
from handlers.context import SlackContext


def register_home(app: App, ctx: SlackContext) -> None:
    """Wire `app_home_opened`."""

    def ack_event(ack: Ack) -> None:
        ack()

    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user_id = str(event["user"])
        client.views_publish(user_id=user_id, view=build_home(ctx, user_id))

    app.event("app_home_opened")(ack=ack_event, lazy=[publish_home])


def build_home(ctx: SlackContext, user_id: str) -> dict[str, Any]:
    """The Home view for one user; failures become a message in the view."""
    result = own_tokens(ctx.deps, user_id)
    ctx.count(result)
    if isinstance(result, Refused):
        return home_view(None, None, problem=result.reason)
    return home_view(result.report, result.email)
