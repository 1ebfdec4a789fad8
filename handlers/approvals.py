"""Decisions and token buttons: Approve / Deny, the owner's Revoke now (Narrow now) / Cancel, the Revoke
buttons of the Home tab, the weekly DM and the guided rotation, and the weekly DM's Narrow buttons. Each
listener parses, calls one flow, renders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.approvals import RequestState
from bot.flows.decide import decide
from bot.flows.results import Decided
from bot.flows.revoke import Origin, request_revoke
from bot.flows.scope import ScopeAsk, request_scope
from handlers.approval_blocks import (
    ACTION_APPROVE,
    ACTION_CANCEL,
    ACTION_CONFIRM,
    ACTION_DENY,
    VIEW_CONFIRM,
    message_modal,
    outcome_text,
)
from handlers.blocks import (
    ACTION_NARROW_OWN,
    ACTION_REVOKE_MIGRATED,
    ACTION_REVOKE_OWN,
    ACTION_REVOKE_ROTATED,
    section,
)
from handlers.context import SlackContext
from handlers.errors import user_message
from handlers.result_blocks import revoke_modal

DECISIONS = {
    ACTION_APPROVE: RequestState.APPROVED,
    ACTION_DENY: RequestState.DENIED,
    ACTION_CONFIRM: RequestState.APPROVED,
    ACTION_CANCEL: RequestState.CANCELLED,
}


def register_approvals(app: App, ctx: SlackContext) -> None:
    """Wire the decision buttons, the owner's confirmation and every Revoke button."""

    def ack_only(ack: Ack) -> None:
        ack()

    def on_click(decision: RequestState) -> Callable[..., None]:
        def run(body: dict[str, Any], respond: Respond) -> None:
            click(ctx, body, respond, decision)

        return run

    for action_id, decision in DECISIONS.items():
        app.action(action_id)(ack=ack_only, lazy=[on_click(decision)])

    def revoke_button(origin: Origin) -> Callable[..., None]:
        def run(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
            if body.get("response_url"):  # a button in a message: answer in the conversation
                ask_from_message(ctx, body, respond, origin)
            else:  # the Home tab: answer in a modal
                ask_from_home(ctx, body, client)

        return run

    app.action(ACTION_REVOKE_OWN)(ack=ack_only, lazy=[revoke_button(Origin.REMINDER)])
    app.action(ACTION_REVOKE_ROTATED)(ack=ack_only, lazy=[revoke_button(Origin.ROTATION)])
    app.action(ACTION_REVOKE_MIGRATED)(ack=ack_only, lazy=[revoke_button(Origin.MIGRATION)])

    def narrow_button(body: dict[str, Any], respond: Respond) -> None:
        narrow_from_message(ctx, body, respond)

    app.action(ACTION_NARROW_OWN)(ack=ack_only, lazy=[narrow_button])

    def ack_submission(ack: Ack) -> None:
        ack(response_action="update", view=message_modal("Revoke token", "Revoking…"))

    def confirm_submission(body: dict[str, Any], client: WebClient) -> None:
        view = body["view"]
        try:
            result = decide(
                ctx.deps,
                str(view.get("private_metadata", "")),
                str(body["user"]["id"]),
                RequestState.APPROVED,
            )
            text = outcome_text(result.request) if isinstance(result, Decided) else result.reason
        except Exception as exc:
            text = user_message(exc, ctx.metrics)
        client.views_update(view_id=str(view["id"]), view=message_modal("Revoke token", text))

    app.view(VIEW_CONFIRM)(ack=ack_submission, lazy=[confirm_submission])


def click(ctx: SlackContext, body: dict[str, Any], respond: Respond, decision: RequestState) -> None:
    """A decision button: the flow decides and tells the approvers; the clicker sees a refusal or the outcome."""
    actor = str(body["user"]["id"])
    request_id = str(body["actions"][0].get("value", ""))
    try:
        result = decide(ctx.deps, request_id, actor, decision)
    except Exception as exc:
        respond(text=user_message(exc, ctx.metrics), response_type="ephemeral", replace_original=False)
        return
    if not isinstance(result, Decided):
        respond(text=result.reason, response_type="ephemeral", replace_original=False)
    elif result.request.self_service:  # the owner's own confirmation: replace it with the outcome
        text = outcome_text(result.request)
        respond(blocks=[section(text)], text=text, replace_original=True)


def ask_from_message(ctx: SlackContext, body: dict[str, Any], respond: Respond, origin: Origin) -> None:
    """A Revoke button in a DM: the owner's confirmation (or the approvers' request) as an ephemeral reply."""
    user_id = str(body["user"]["id"])
    token_id = str(body["actions"][0].get("value", ""))
    try:
        blocks = ctx.render(request_revoke(ctx.deps, user_id, token_id, origin=origin))
    except Exception as exc:
        blocks = [section(user_message(exc, ctx.metrics))]
    respond(blocks=blocks, text="Revoke", response_type="ephemeral", replace_original=False)


NARROW_REASON = "from patbot's weekly reminder"


def narrow_from_message(ctx: SlackContext, body: dict[str, Any], respond: Respond) -> None:
    """The weekly DM's "Narrow to …": `/pat scope <id> suggested` by whoever clicked, answered ephemerally
    (the owner gets a confirmation; the scopes are worked out now, not taken from the message)."""
    user_id = str(body["user"]["id"])
    token_id = str(body["actions"][0].get("value", ""))
    try:
        ask = ScopeAsk(token_id, suggested=True)
        blocks = ctx.render(request_scope(ctx.deps, user_id, ask, reason=NARROW_REASON))
    except Exception as exc:
        blocks = [section(user_message(exc, ctx.metrics))]
    respond(blocks=blocks, text="Narrow scopes", response_type="ephemeral", replace_original=False)


def ask_from_home(ctx: SlackContext, body: dict[str, Any], client: WebClient) -> None:
    """The Home tab's Revoke: open a modal at once (trigger ids expire in 3 s), then fill it in."""
    opened = client.views_open(
        trigger_id=str(body["trigger_id"]), view=message_modal("Revoke token", "Looking up the token…")
    )
    user_id = str(body["user"]["id"])
    token_id = str(body["actions"][0].get("value", ""))
    try:
        result = request_revoke(ctx.deps, user_id, token_id, origin=Origin.HOME)
        ctx.count(result)
        view = revoke_modal(result)
    except Exception as exc:
        view = message_modal("Revoke token", user_message(exc, ctx.metrics))
    client.views_update(view_id=str(opened["view"]["id"]), view=view)
