"""Block Kit for a request left in doubt by a crash: the admin message says so. Pure."""

from __future__ import annotations

from bot.approvals.in_doubt import InDoubt
from handlers.approval_blocks import KIND_VERBS, describe
from handlers.blocks import Block, context, escape, section, slack_date


def in_doubt_text(item: InDoubt) -> str:
    """The admin message's verdict for a request whose outcome is unknown."""
    request = item.request
    when = slack_date(request.decided_at, "{date_short_pretty} {time}") if request.decided_at else ""
    return (
        f":warning: *In doubt.* Approved by <@{escape(request.decided_by or '')}> {when}, but patbot stopped "
        f"before it recorded what Databricks did. Not known: {escape(item.not_known)}. "
        "patbot will not retry it by itself."
    )


def in_doubt_blocks(item: InDoubt) -> list[Block]:
    """The admin message of a request in doubt: what was asked, and what to check (no buttons)."""
    request = item.request
    return [
        section(
            f"<@{request.requester}> asked to {KIND_VERBS.get(request.kind, request.kind)}:\n{describe(request)}"
        ),
        section(in_doubt_text(item)),
        context(f"Request `{request.id}` · listed by `patbot log --in-doubt`"),
    ]
