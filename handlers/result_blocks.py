"""Block Kit for the flows' typed results: what the person who asked sees. Pure."""

from __future__ import annotations

from typing import Any

from bot.flows.results import (
    AuditResult,
    FleetAudit,
    GuideSent,
    NoDatabricksUser,
    OwnAudit,
    PolicyView,
    Refused,
    RequestResult,
    SelfConfirm,
    SentToApprovers,
)
from handlers.approval_blocks import message_modal, requested_blocks, self_confirm_blocks, self_confirm_modal
from handlers.blocks import (
    Block,
    error_blocks,
    escape,
    fleet_audit_blocks,
    own_audit_blocks,
    posture_line,
    section,
)
from handlers.scope_text import token_users_text


def request_result_blocks(result: RequestResult) -> list[Block]:
    """The answer to a revoke / create / rotate / policy request."""
    if isinstance(result, SelfConfirm):
        return self_confirm_blocks(result.request)
    if isinstance(result, SentToApprovers):
        return requested_blocks(result.request)
    if isinstance(result, GuideSent):
        who = "you" if result.to_self else escape(result.token.owner)
        return [section(f"I sent {who} a DM with the steps to rotate token `{result.token.short_id}`.")]
    return error_blocks(result.reason)


def revoke_modal(result: RequestResult) -> dict[str, Any]:
    """The Home tab's Revoke as a modal: the owner's confirmation, or what happened instead."""
    if isinstance(result, SelfConfirm):
        return self_confirm_modal(result.request)
    text = result.reason if isinstance(result, Refused) else _first_text(request_result_blocks(result))
    return message_modal("Revoke token", text)


def _first_text(blocks: list[Block]) -> str:
    return str(blocks[0]["text"]["text"]) if blocks else ""


def audit_result_blocks(result: AuditResult) -> list[Block]:
    """The answer to `/pat audit …`."""
    if isinstance(result, OwnAudit):
        return own_audit_blocks(result.report, result.email)
    if isinstance(result, NoDatabricksUser):
        return [
            section(
                f"No Databricks user with the e-mail {escape(result.email)} exists in the "
                f"{result.workspaces} governed workspace(s), so you own no tokens there."
            )
        ]
    if isinstance(result, FleetAudit):
        return fleet_audit_blocks(result.report, result.label, csv_sent=result.csv_sent)
    return error_blocks(result.reason)


def policy_blocks(view: PolicyView) -> list[Block]:
    """Token posture of every workspace in plain words, who may use tokens, and a warning where a
    workspace allows more than patbot's maximum."""
    lines = []
    for row in view.workspaces:
        posture = row.posture
        lines.append(
            posture_line(
                row.workspace.label, posture if posture is not None else row.problem, view.max_lifetime_days
            )
        )
        if posture is not None:
            lines.append(f"    {token_users_text(posture)}")
    return [section("*Workspace token policy*\n" + "\n".join(lines))]
