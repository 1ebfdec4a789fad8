"""`/pat`: ack at once, then do the work in a lazy listener and answer through `response_url`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.report import to_csv
from handlers.approvals import REVOKE_USAGE, revoke_request
from handlers.blocks import Block, error_blocks, fleet_audit_blocks, help_blocks, own_audit_blocks, section
from handlers.context import SlackContext
from handlers.errors import user_message
from handlers.parsing import AuditScope, parse_audit_scope, parse_command
from handlers.provisioning import create_command, policy_command, rotate_command

log = logging.getLogger(__name__)

NOT_APPROVER = "Only approvers can see the fleet. `/pat audit` shows your own tokens."


def register_commands(app: App, ctx: SlackContext) -> None:
    """Wire `/pat` into the app."""

    def ack_pat(ack: Ack) -> None:
        ack()

    def run_pat(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user_id = str(body.get("user_id", ""))
        try:
            blocks = dispatch(ctx, client, user_id, str(body.get("text", "")))
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


def dispatch(ctx: SlackContext, client: WebClient, user_id: str, text: str) -> list[Block]:
    """Run one `/pat` command for `user_id` and return the ephemeral answer."""
    command = parse_command(text)
    if command.name == "audit":
        return audit_command(ctx, client, user_id, parse_audit_scope(command.args))
    if command.name == "revoke":
        if not command.args:
            return [section(REVOKE_USAGE)]
        reason = command.rest[len(command.args[0]) :].strip()
        return revoke_request(ctx, client, user_id, command.args[0], reason)
    if command.name == "create":
        return create_command(ctx, client, user_id, command.rest)
    if command.name == "rotate":
        return rotate_command(ctx, client, user_id, command.rest)
    if command.name == "policy":
        return policy_command(ctx, client, user_id, command.args)
    blocks = help_blocks(ctx.directory.is_approver(user_id))
    if command.rest:
        blocks.insert(
            0, section(f"I don't know `{command.rest[:40].replace('`', '')}`. Here is what I can do:")
        )
    return blocks


def audit_command(ctx: SlackContext, client: WebClient, user_id: str, scope: AuditScope) -> list[Block]:
    """`/pat audit`: own tokens for anyone; the fleet, a user or a workspace for approvers."""
    if scope.kind == "own":
        email = ctx.directory.email_of(user_id)
        report = ctx.audit(owner=email)
        if not report.tokens and report.owner_known() is False:
            return [
                section(
                    f"No Databricks user with the e-mail {email} exists in the "
                    f"{len(report.workspaces)} governed workspace(s), so you own no tokens there."
                )
            ]
        return own_audit_blocks(report, email)

    if not ctx.directory.is_approver(user_id):
        return [section(NOT_APPROVER)]
    if scope.kind == "all":
        report, label = ctx.audit(), "all workspaces"
    elif scope.kind == "user":
        email = ctx.directory.email_of(scope.value)
        report, label = ctx.audit(owner=email), email
    elif scope.kind == "email":
        report, label = ctx.audit(owner=scope.value), scope.value
    else:
        report, label = ctx.audit(selectors=(scope.value,)), scope.value
    csv_sent = send_csv(ctx, client, user_id, to_csv(report), label)
    return fleet_audit_blocks(report, label, csv_sent=csv_sent)


def send_csv(ctx: SlackContext, client: WebClient, user_id: str, content: str, label: str) -> bool:
    """Upload the CSV report to the approver's DM with the bot (files upload v2)."""
    try:
        channel = ctx.directory.dm_channel(user_id)
        client.files_upload_v2(
            channel=channel,
            content=content,
            filename="patbot-audit.csv",
            title=f"PAT audit: {label}"[:200],
            initial_comment=f"The full token audit ({label}).",
        )
    except Exception as exc:
        log.warning("could not send the CSV report: %s", user_message(exc, ctx.metrics))
        return False
    return True
