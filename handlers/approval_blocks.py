"""Block Kit for requests and decisions: the admin message, confirmations, outcomes. Pure."""

from __future__ import annotations

import re
from typing import Any

from bot.approvals import (
    ApprovalRequest,
    MigratePlan,
    PolicyPlan,
    RequestState,
    RevokePlan,
    ScopePlan,
    TokenPlan,
)
from bot.governance.models import Finding
from handlers.blocks import (
    Block,
    clip_words,
    context,
    escape,
    findings_text,
    plain_section,
    section,
    slack_date,
)
from handlers.migrate_blocks import migrate_lines, migration_done_blocks
from handlers.scope_text import scopes_text

ACTION_APPROVE = "pat_approve"
ACTION_DENY = "pat_deny"
ACTION_CONFIRM = "pat_confirm_self"
ACTION_CANCEL = "pat_cancel_self"
VIEW_CONFIRM = "pat_confirm_modal"

MAX_REASON_CHARS = 500
MAX_COMMENT_CHARS = 200
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")

KIND_VERBS = {
    "revoke": "revoke",
    "create": "create a token for",
    "rotate": "rotate",
    "policy": "change the policy of",
    "migrate": "move a service principal to OAuth",
    "scope": "change the API scopes of",
}


def _findings(codes: tuple[str, ...]) -> list[Finding]:
    return [Finding(c) for c in codes if c in Finding.__members__.values()]


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


def _scopes_line(plan: TokenPlan) -> str:
    access = scopes_text(plan.scopes) if plan.scopes else "full access (no API scopes)"
    if plan.autoscope:
        access += ", autoscope on"
    return f"API scopes: {escape(access)}"


def scope_change_text(plan: ScopePlan) -> str:
    """ "full access → sql, jobs (read)": the scopes before and after, in plain words."""
    return f"{scopes_text(plan.before)} → {scopes_text(plan.after)}"


def describe(request: ApprovalRequest) -> str:
    """One mrkdwn paragraph about what the request is for (all user text escaped)."""
    plan = request.plan
    if isinstance(plan, RevokePlan):
        lines = [
            f"*Revoke token* `{escape(request.subject[:12])}` in *{escape(plan.workspace_label or request.workspace)}*",
            f"Owner: {escape(plan.owner_display or request.owner or 'unknown')}",
        ]
        if plan.findings:
            lines.append(f"Findings: _{escape(findings_text(_findings(plan.findings)))}_")
    elif isinstance(plan, TokenPlan) and request.kind == "create":
        lines = [
            f"*Create a token* for service principal *{escape(plan.principal)}* "
            f"(`{escape(plan.application_id)}`) in *{escape(plan.workspace_label)}*",
            f"Lifetime: {escape(plan.lifetime)} · value goes to secret "
            f"`{escape(plan.secret_scope)}/{escape(plan.secret_key)}`, never to Slack",
            _scopes_line(plan),
        ]
    elif isinstance(plan, TokenPlan):
        lines = [
            f"*Rotate token* `{escape(request.subject[:12])}` of service principal "
            f"*{escape(plan.principal)}* in *{escape(plan.workspace_label)}*",
            f"New lifetime: {escape(plan.lifetime)} · new value goes to secret "
            f"`{escape(plan.secret_scope)}/{escape(plan.secret_key)}` · then the old token is revoked",
            _scopes_line(plan),
        ]
    elif isinstance(plan, MigratePlan):
        lines = migrate_lines(plan)
    elif isinstance(plan, ScopePlan):
        lines = [
            f"*Change the API scopes* of token `{escape(request.subject[:12])}` in "
            f"*{escape(plan.workspace_label or request.workspace)}*",
            f"Owner: {escape(plan.owner_display or request.owner or 'unknown')}",
            f"Scopes: {scope_change_text(plan)}",
        ]
        if plan.widening:
            lines.append(":warning: *Wider* than before: the token could call APIs it cannot call now.")
    else:
        lines = [
            f"*Set the maximum lifetime of new tokens to {plan.days} days* on "
            f"{escape(plan.labels or request.workspace)} (Databricks setting `maxTokenLifetimeDays`)"
        ]
    if isinstance(plan, TokenPlan) and plan.secret_key_note:
        lines.append(f"Secret key chosen because {escape(plan.secret_key_note)}")
    elif isinstance(plan, TokenPlan) and request.kind == "create":
        lines.append("That key holds no live token's value now (checked again before writing).")
    return "\n".join(lines)


def workspace_label(request: ApprovalRequest) -> str:
    """The workspace a request is about, by name where the plan knows it."""
    plan = request.plan
    if isinstance(plan, RevokePlan | TokenPlan | MigratePlan | ScopePlan) and plan.workspace_label:
        return plan.workspace_label
    if isinstance(plan, PolicyPlan) and plan.labels:
        return plan.labels
    return request.workspace


def user_text_block(request: ApprovalRequest) -> Block | None:
    """The token comment and the reason, as typed: a plain_text block, so `*x*`, `&amp;` or `<!here>`
    show literally; long ones end on a word with "…". None when there is neither."""
    lines = []
    plan = request.plan
    comment = plan.comment if isinstance(plan, RevokePlan | TokenPlan | ScopePlan) else ""
    if comment:
        lines.append(f"Comment: “{clip_words(comment, MAX_COMMENT_CHARS)}”")
    if request.reason:
        lines.append(f"Reason: {clip_words(request.reason, MAX_REASON_CHARS)}")
    return plain_section("\n".join(lines)) if lines else None


def _with_user_text(blocks: list[Block], request: ApprovalRequest, at: int = 1) -> list[Block]:
    extra = user_text_block(request)
    return [*blocks[:at], extra, *blocks[at:]] if extra is not None else blocks


def summary(request: ApprovalRequest) -> str:
    """What was asked, in a few words of mrkdwn: `revoke token `abc…` in *prod*`."""
    plan, label = request.plan, escape(workspace_label(request))
    if isinstance(plan, RevokePlan):
        return f"revoke token `{escape(request.subject[:12])}` in *{label}*"
    if isinstance(plan, TokenPlan) and request.kind == "create":
        return f"create a token for *{escape(plan.principal or request.subject)}* in *{label}*"
    if isinstance(plan, TokenPlan):
        return f"rotate token `{escape(request.subject[:12])}` in *{label}*"
    if isinstance(plan, MigratePlan):
        return f"move *{escape(plan.principal or request.subject)}* from PATs to OAuth in *{label}*"
    if isinstance(plan, ScopePlan):
        return f"change the API scopes of token `{escape(request.subject[:12])}` in *{label}*"
    return f"set the maximum token lifetime to {plan.days} days on {label}"


def who(user: str | None) -> str:
    """A Slack user as a mention; anything else (``patbot``, a missing name) as plain words."""
    if user and _SLACK_USER.match(user):
        return f"<@{user}>"
    return escape(user or "someone")


def _result(request: ApprovalRequest, *, standalone: bool) -> str:
    """What the action did, said once. *standalone*: the sentence must name the token by itself."""
    outcome, detail = request.outcome or "", request.outcome_detail or ""
    if outcome == "failed":
        return f"Failed: {escape(detail)}" if detail else "Failed"
    if request.kind == "revoke" and outcome == "revoked":
        # The detail repeats the token and workspace; only what follows them (e.g. what a read-back saw) is news.
        aside = detail.split(" (", 1)[1].rstrip(")") if " (" in detail else ""
        extra = f" ({escape(aside)})" if aside else ""
        if not standalone:
            return f"Revoked{extra}"
        label = workspace_label(request)
        return f"Revoked token `{escape(request.subject[:12])}` in *{escape(label)}*{extra}"
    plan = request.plan
    if isinstance(plan, ScopePlan) and outcome in ("narrowed", "widened"):
        if not standalone:
            return f"{outcome.capitalize()}: {scope_change_text(plan)}"
        label = escape(workspace_label(request))
        return (
            f"{outcome.capitalize()} the API scopes of token `{escape(request.subject[:12])}` in *{label}*: "
            f"{scope_change_text(plan)}"
        )
    if detail and outcome.lower() in detail.lower():
        return escape(detail[:1].upper() + detail[1:])
    return escape(outcome.capitalize()) + (f": {escape(detail)}" if detail else "")


def admin_request_blocks(request: ApprovalRequest) -> list[Block]:
    """The pending request as posted to the admin channel, with Approve / Deny."""
    return _with_user_text(
        [
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
        ],
        request,
    )


def outcome_text(request: ApprovalRequest, *, standalone: bool = True) -> str:
    """The final word on a request: who decided, when, and what happened (said once).

    The owner's own revoke needs no approver, so it says what was done, not who approved it.
    *standalone* (the default) names the token in the result; the admin message, which describes
    the request above, passes False.
    """
    when = slack_date(request.decided_at, "{date_short_pretty} {time}") if request.decided_at else ""
    state = request.state
    own = request.self_service
    if state is RequestState.APPROVED:
        if request.outcome is None:
            return (
                ":hourglass: In progress…"
                if own
                else f":hourglass: Approved by {who(request.decided_by)} {when}; in progress…"
            )
        icon = ":white_check_mark:" if request.outcome != "failed" else ":x:"
        result = _result(request, standalone=standalone or own)
        if own:
            return f"{icon} {result} · {when}" if when else f"{icon} {result}"
        return f"{icon} Approved by {who(request.decided_by)} {when}. {result}."
    if state is RequestState.DENIED:
        return f":no_entry: Denied by {who(request.decided_by)} {when}. Nothing was changed."
    if state is RequestState.CANCELLED:
        by = "" if own else f" by {who(request.decided_by)}"
        return f":heavy_multiplication_x: Cancelled{by} {when}. Nothing was changed."
    if state is RequestState.EXPIRED:
        expired = slack_date(request.expires_at, "{date_short_pretty} {time}")
        return f":hourglass_flowing_sand: Expired {expired} without a decision. Nothing was changed."
    return "Pending."


def admin_decided_blocks(request: ApprovalRequest) -> list[Block]:
    """The admin message after the decision: buttons gone, outcome shown."""
    if request.self_service:
        done = "narrowed the scopes of" if isinstance(request.plan, ScopePlan) else "revoked"
        lead = f"<@{request.requester}> {done} their own token:"
    else:
        lead = f"<@{request.requester}> asked to {KIND_VERBS.get(request.kind, request.kind)}:"
    return _with_user_text(
        [
            section(f"{lead}\n{describe(request)}"),
            section(outcome_text(request, standalone=False)),
            *migration_done_blocks(request),
            context(f"Request `{request.id}`"),
        ],
        request,
    )


def _confirm_words(request: ApprovalRequest) -> tuple[str, str, str]:
    """The owner's question, its button and the button's style, by what the request does."""
    if isinstance(request.plan, ScopePlan):
        question = (
            "You own this token. Narrow its API scopes now? Anything the token calls outside the new "
            "scopes will be refused."
        )
        return question, "Narrow now", "primary"
    return "You own this token. Revoke it now? This cannot be undone.", "Revoke now", "danger"


def self_confirm_blocks(request: ApprovalRequest) -> list[Block]:
    """The owner's "Revoke now / Cancel" (or "Narrow now / Cancel") confirmation (ephemeral)."""
    question, act, style = _confirm_words(request)
    return _with_user_text(
        [
            section(f"{question}\n{describe(request)}"),
            {
                "type": "actions",
                "block_id": f"confirm-{request.id}",
                "elements": [
                    _button(act, ACTION_CONFIRM, request.id, style),
                    _button("Cancel", ACTION_CANCEL, request.id),
                ],
            },
        ],
        request,
    )


def self_confirm_modal(request: ApprovalRequest) -> dict[str, Any]:
    """The same confirmation as a modal (from the App Home tab)."""
    return {
        "type": "modal",
        "callback_id": VIEW_CONFIRM,
        "private_metadata": request.id,
        "title": {"type": "plain_text", "text": "Revoke token"},
        "submit": {"type": "plain_text", "text": "Revoke now"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": _with_user_text(
            [section(f"You own this token. Revoke it now? This cannot be undone.\n{describe(request)}")],
            request,
        ),
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
    return _with_user_text(
        [
            section(
                f"Request `{request.id}` sent to the approvers. I'll DM you when it is decided "
                f"(it expires {slack_date(request.expires_at, '{date_short_pretty} {time}')}).\n{describe(request)}"
            )
        ],
        request,
    )


def decision_dm_text(request: ApprovalRequest, *, to_owner: bool) -> str:
    """The DM to the requester (or the token's owner) about a decision.

    The owner learns what happened to their token, who asked and why, and who approved; the requester
    learns what their request was and how it ended. Also the fallback text of :func:`decision_dm_blocks`.
    """
    if to_owner:
        return _owner_dm(request, with_reason=True)
    return (
        f"About your request `{request.id}` to {summary(request)}: {outcome_text(request, standalone=False)}"
    )


def _owner_dm(request: ApprovalRequest, *, with_reason: bool) -> str:
    label = workspace_label(request)
    token = f"your token `{escape(request.subject[:12])}` in *{escape(label)}*"
    if request.outcome is None:
        happened = "being acted on"
    else:
        happened = _result(request, standalone=False)
        happened = happened[:1].lower() + happened[1:]
    asked = f"<@{request.requester}> asked for it"
    if with_reason and request.reason:
        asked += f" (reason: “{escape(clip_words(request.reason, MAX_REASON_CHARS))}”)"
    when = slack_date(request.decided_at, "{date_short_pretty} {time}") if request.decided_at else ""
    approved = f"{who(request.decided_by)} approved {when}".rstrip()
    icon = ":x:" if request.outcome == "failed" else ":information_source:"
    return f"{icon} About {token}: {happened}. {asked}; {approved}."


def decision_dm_blocks(request: ApprovalRequest, *, to_owner: bool) -> list[Block]:
    """The same DM as blocks, with the reason in plain text so it shows exactly as typed."""
    if not to_owner:
        return [section(decision_dm_text(request, to_owner=False)), *migration_done_blocks(request)]
    blocks = [section(_owner_dm(request, with_reason=False))]
    if request.reason:
        blocks.append(plain_section(f"Reason: {clip_words(request.reason, MAX_REASON_CHARS)}"))
    return blocks
