"""Block Kit for requests and decisions: the admin message, confirmations, outcomes. Pure."""

from __future__ import annotations

from typing import Any

from bot.approvals import ApprovalRequest, RequestState
from bot.governance.models import Finding
from handlers.blocks import Block, context, escape, findings_text, section, slack_date

ACTION_APPROVE = "pat_approve"
ACTION_DENY = "pat_deny"
ACTION_CONFIRM = "pat_confirm_self"
ACTION_CANCEL = "pat_cancel_self"
VIEW_CONFIRM = "pat_confirm_modal"

KIND_VERBS = {
    "revoke": "revoke",
    "create": "create a token for",
    "rotate": "rotate",
    "policy": "change the policy of",
}


def _findings(codes: str) -> list[Finding]:
    return [Finding(c) for c in codes.split(",") if c in Finding.__members__.values()]


def _button(text: str, action_id: str, request_id: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": request_id,
    }
    if style:
        button["style"] = style
    return button


def describe(request: ApprovalRequest) -> str:
    """One mrkdwn paragraph about what the request is for (all user text escaped)."""
    p = request.params
    if request.kind == "revoke":
        lines = [
            f"*Revoke token* `{escape(request.subject[:12])}` in *{escape(p.get('workspace_label', request.workspace))}*"
        ]
        owner = p.get("owner_display") or request.owner or "unknown"
        lines.append(f"Owner: {escape(owner)}")
        if p.get("comment"):
            lines.append(f"Comment: “{escape(p['comment'][:200])}”")
        if p.get("findings"):
            lines.append(f"Findings: _{escape(findings_text(_findings(p['findings'])))}_")
    elif request.kind == "create":
        lines = [
            f"*Create a token* for service principal *{escape(p.get('principal', ''))}* "
            f"(`{escape(p.get('application_id', ''))}`) in *{escape(p.get('workspace_label', ''))}*",
            f"Lifetime: {escape(p.get('lifetime', ''))} · value goes to secret "
            f"`{escape(p.get('secret_scope', ''))}/{escape(p.get('secret_key', ''))}`, never to Slack",
        ]
        if p.get("comment"):
            lines.append(f"Comment: “{escape(p['comment'][:200])}”")
    elif request.kind == "rotate":
        lines = [
            f"*Rotate token* `{escape(request.subject[:12])}` of service principal "
            f"*{escape(p.get('principal', ''))}* in *{escape(p.get('workspace_label', ''))}*",
            f"New lifetime: {escape(p.get('lifetime', ''))} · new value goes to secret "
            f"`{escape(p.get('secret_scope', ''))}/{escape(p.get('secret_key', ''))}` · then the old token is revoked",
        ]
    elif request.kind == "policy":
        lines = [
            f"*Set maxTokenLifetimeDays = {escape(p.get('days', ''))}* on "
            f"{escape(p.get('labels', request.workspace))}"
        ]
    else:
        lines = [f"*{escape(request.kind.capitalize())}* `{escape(request.subject[:40])}`"]
    if p.get("secret_key_note"):
        lines.append(f"Secret key chosen because {escape(p['secret_key_note'])}")
    if request.reason:
        lines.append(f"Reason: {escape(request.reason[:500])}")
    return "\n".join(lines)


def admin_request_blocks(request: ApprovalRequest) -> list[Block]:
    """The pending request as posted to the admin channel, with Approve / Deny."""
    return [
        section(
            f":key: <@{request.requester}> asks to {KIND_VERBS.get(request.kind, request.kind)}:\n{describe(request)}"
        ),
        {
            "type": "actions",
            "block_id": f"decide-{request.id}",
            "elements": [
                _button("Approve", ACTION_APPROVE, request.id, "primary"),
                _button("Deny", ACTION_DENY, request.id, "danger"),
            ],
        },
        context(
            f"Request `{request.id}` · expires {slack_date(request.expires_at, '{date_short_pretty} {time}')}"
        ),
    ]


def outcome_text(request: ApprovalRequest) -> str:
    """The final word on a request: who decided, when, and what happened."""
    when = slack_date(request.decided_at, "{date_short_pretty} {time}") if request.decided_at else ""
    state = request.state
    if state is RequestState.APPROVED:
        if request.outcome is None:
            return f":hourglass: Approved by <@{request.decided_by}> {when}; in progress…"
        icon = ":white_check_mark:" if request.outcome != "failed" else ":x:"
        detail = f": {escape(request.outcome_detail)}" if request.outcome_detail else ""
        return f"{icon} Approved by <@{request.decided_by}> {when}. {escape(request.outcome.capitalize())}{detail}"
    if state is RequestState.DENIED:
        return f":no_entry: Denied by <@{request.decided_by}> {when}. Nothing was changed."
    if state is RequestState.CANCELLED:
        return f":heavy_multiplication_x: Cancelled by <@{request.decided_by}> {when}. Nothing was changed."
    if state is RequestState.EXPIRED:
        expired = slack_date(request.expires_at, "{date_short_pretty} {time}")
        return f":hourglass_flowing_sand: Expired {expired} without a decision. Nothing was changed."
    return "Pending."


def admin_decided_blocks(request: ApprovalRequest) -> list[Block]:
    """The admin message after the decision: buttons gone, outcome shown."""
    return [
        section(
            f"<@{request.requester}> asked to {KIND_VERBS.get(request.kind, request.kind)}:\n{describe(request)}"
        ),
        section(outcome_text(request)),
        context(f"Request `{request.id}`"),
    ]


def self_confirm_blocks(request: ApprovalRequest) -> list[Block]:
    """The owner's "Revoke now / Cancel" confirmation (ephemeral)."""
    return [
        section(f"You own this token. Revoke it now? This cannot be undone.\n{describe(request)}"),
        {
            "type": "actions",
            "block_id": f"confirm-{request.id}",
            "elements": [
                _button("Revoke now", ACTION_CONFIRM, request.id, "danger"),
                _button("Cancel", ACTION_CANCEL, request.id),
            ],
        },
    ]


def self_confirm_modal(request: ApprovalRequest) -> dict[str, Any]:
    """The same confirmation as a modal (from the App Home tab)."""
    return {
        "type": "modal",
        "callback_id": VIEW_CONFIRM,
        "private_metadata": request.id,
        "title": {"type": "plain_text", "text": "Revoke token"},
        "submit": {"type": "plain_text", "text": "Revoke now"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"You own this token. Revoke it now? This cannot be undone.\n{describe(request)}")
        ],
    }


def message_modal(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [section(text)],
    }


def requested_blocks(request: ApprovalRequest) -> list[Block]:
    """What the requester sees after asking."""
    return [
        section(
            f"Request `{request.id}` sent to the approvers. I'll DM you when it is decided "
            f"(it expires {slack_date(request.expires_at, '{date_short_pretty} {time}')}).\n{describe(request)}"
        )
    ]


def decision_dm_text(request: ApprovalRequest, *, to_owner: bool) -> str:
    """The DM to the requester (or the token's owner) about a decision."""
    subject = f"your token `{escape(request.subject[:12])}`" if to_owner else f"request `{request.id}`"
    return f"About {subject}: {outcome_text(request)}"
