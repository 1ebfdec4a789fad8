"""Block Kit for the guided rotation of a user's own token. Pure."""

from __future__ import annotations

from bot.governance.models import Token
from handlers.blocks import ACTION_REVOKE_ROTATED, Block, escape, section


def rotation_guide_blocks(token: Token, max_days: int, *, requester: str, owner: str) -> list[Block]:
    """The DM guiding a user through replacing their own token (`requester` asked; `owner` reads it)."""
    label = f" (“{escape(token.comment[:80])}”)" if token.comment else ""
    who = "You asked" if requester == owner else f"<@{requester}> asked"
    return [
        section(
            f"{who} for your Databricks token `{token.short_id}`{label} to be rotated.\n"
            f"1. In Databricks, *User Settings → Developer → Access tokens → Generate new token*, with a "
            f"lifetime of at most {max_days} days.\n"
            "2. Put the new token wherever the old one is used (jobs, BI tools, CI secrets).\n"
            "3. Come back here and revoke the old one."
        ),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "I've replaced it, revoke the old one"},
                    "action_id": ACTION_REVOKE_ROTATED,
                    "value": token.token_id,
                    "style": "danger",
                }
            ],
        },
    ]
