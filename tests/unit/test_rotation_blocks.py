"""The guided rotation DM: who asked, in the owner's words, and a button whose revoke says why."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.governance.models import Token
from handlers.blocks import ACTION_REVOKE_OWN, ACTION_REVOKE_ROTATED
from handlers.rotation_blocks import rotation_guide_blocks

TOKEN = Token(
    token_id="36c04374415e" + "0" * 20,
    workspace="https://prod.example",
    owner="bob@example.com",
    owner_id=1,
    comment="laptop",
    created=datetime(2026, 1, 1, tzinfo=UTC),
    expires=None,
    last_used=None,
)


def text_of(blocks: list[dict]) -> str:
    return blocks[0]["text"]["text"]


def test_an_owner_rotating_their_own_token_is_not_told_they_asked_themselves() -> None:
    own = rotation_guide_blocks(TOKEN, 90, requester="UBOB", owner="UBOB")
    assert text_of(own).startswith("You asked for your Databricks token `36c04374415e`")
    assert "<@UBOB>" not in text_of(own)


def test_someone_else_asking_is_named() -> None:
    other = rotation_guide_blocks(TOKEN, 90, requester="UALICE", owner="UBOB")
    assert text_of(other).startswith("<@UALICE> asked for your Databricks token")
    assert "at most 90 days" in text_of(other)


def test_the_button_is_the_rotation_revoke_not_the_reminders() -> None:
    button = rotation_guide_blocks(TOKEN, 90, requester="UBOB", owner="UBOB")[1]["elements"][0]
    assert button["action_id"] == ACTION_REVOKE_ROTATED != ACTION_REVOKE_OWN
    assert button["value"] == TOKEN.token_id
