"""`/pat`: ack at once, then parse the text, call one flow and answer through `response_url`."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.flows.audit import AuditTarget, audit_for, is_approver
from bot.flows.create import request_create
from bot.flows.migrate import request_migrate
from bot.flows.policy import policy_view, request_max_lifetime
from bot.flows.results import Refused
from bot.flows.revoke import request_revoke
from bot.flows.rotate import request_rotate
from bot.flows.scope import request_scope
from handlers.blocks import Block, error_blocks, help_blocks, section
from handlers.context import SlackContext
from handlers.errors import user_message
from handlers.parsing import (
    CREATE_USAGE,
    MIGRATE_USAGE,
    POLICY_USAGE,
    REVOKE_USAGE,
    ROTATE_USAGE,
    SCOPE_USAGE,
    parse_audit_scope,
    parse_command,
    parse_create,
    parse_migrate,
    parse_scope_change,
)
from handlers.result_blocks import audit_result_blocks, policy_blocks, request_result_blocks


def register_commands(app: App, ctx: SlackContext) -> None:
    """Wire `/pat` into the app."""

    def ack_pat(ack: Ack) -> None:
        ack()

    def run_pat(body: dict[str, Any], respond: Respond) -> None:
        user_id = str(body.get("user_id", ""))
        try:
            blocks = answer(ctx, user_id, str(body.get("text", "")))
        except Exception as exc:
            blocks = error_blocks(user_message(exc, ctx.metrics))
        respond(blocks=blocks, text=_fallback(blocks), response_type="ephemeral", replace_original=False)

    app.command("/pat")(ack=ack_pat, lazy=[run_pat])


def _fallback(blocks: list[Block]) -> str:
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict) and text.get("type") == "mrkdwn":
            return str(text["text"])[:300]
    return "patbot"


def answer(ctx: SlackContext, user_id: str, text: str) -> list[Block]:
    """Run one `/pat` command for `user_id` and return the ephemeral answer."""
    deps = ctx.deps
    command = parse_command(text)
    args = command.args
    if command.name == "audit":
        scope = parse_audit_scope(args)
        result = audit_for(deps, user_id, AuditTarget(scope.kind, scope.value))
        ctx.count(result)
        return audit_result_blocks(result)
    if command.name == "revoke":
        if not args:
            return [section(REVOKE_USAGE)]
        reason = command.rest[len(args[0]) :].strip()
        return ctx.render(request_revoke(deps, user_id, args[0], reason))
    if command.name == "create":
        try:
            ask = parse_create(command.rest)
        except ValueError as exc:
            return error_blocks(str(exc))
        if ask is None:
            return [section(CREATE_USAGE)]
        return ctx.render(request_create(deps, user_id, ask))
    if command.name == "rotate":
        if not args:
            return [section(ROTATE_USAGE)]
        return ctx.render(request_rotate(deps, user_id, args[0], " ".join(args[1:])))
    if command.name == "migrate":
        try:
            migrate = parse_migrate(command.rest)
        except ValueError as exc:
            return error_blocks(str(exc))
        if migrate is None:
            return [section(MIGRATE_USAGE)]
        return ctx.render(request_migrate(deps, user_id, migrate))
    if command.name == "scope":
        change = parse_scope_change(args)
        if change is None:
            return [section(SCOPE_USAGE)]
        return ctx.render(request_scope(deps, user_id, change))
    if command.name == "policy":
        if not args:
            view = policy_view(deps, user_id)
            return error_blocks(view.reason) if isinstance(view, Refused) else policy_blocks(view)
        if args[0].lower() != "max-lifetime" or len(args) < 2:
            return [section(POLICY_USAGE)]
        return ctx.render(request_max_lifetime(deps, user_id, args[1], args[2:]))
    blocks = help_blocks(is_approver(deps, user_id))
    if command.rest:
        blocks.insert(
            0, section(f"I don't know `{command.rest[:40].replace('`', '')}`. Here is what I can do:")
        )
    return blocks


__all__ = ["answer", "register_commands", "request_result_blocks"]
