"""Plain words for scopes and for who may use tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.governance.models import GranteeKind, Posture, Token, TokenUser
from handlers.scope_text import scopes_text, token_scope_line, token_users_text


@pytest.mark.parametrize(
    ("scopes", "text"),
    [
        ((), "full access"),
        (("all-apis",), "full access"),
        (("sql", "all-apis"), "full access"),
        (("sql", "jobs:read"), "sql, jobs (read)"),
        (("sql:read", "sql:restricted-query"), "sql (read, read-only queries)"),
        (("sql:read:restricted-query",), "sql (read, read-only queries)"),
        (("all-apis:read",), "every API (read)"),
        (("<!channel>",), "&lt;!channel&gt;"),
    ],
)
def test_scopes_text(scopes: tuple[str, ...], text: str) -> None:
    assert scopes_text(scopes) == text


def token(**kw: object) -> Token:
    base: dict[str, object] = {
        "token_id": "a" * 64,
        "workspace": "https://ws",
        "owner": "alice@example.com",
        "owner_id": 1,
        "comment": "",
        "created": datetime(2026, 1, 1, tzinfo=UTC),
        "expires": None,
        "last_used": None,
    }
    return Token(**{**base, **kw})  # type: ignore[arg-type]


def test_token_scope_line_shows_use_and_the_narrowing() -> None:
    t = token(scopes=(), inferred_scopes=("sql",), autoscope_state="AUTOSCOPE_STATE_COMPLETED")
    assert token_scope_line(t) == "scopes: full access · uses: sql · can be narrowed to `sql`"
    exact = token(scopes=("sql",), inferred_scopes=("sql",), autoscope_state="AUTOSCOPE_STATE_COMPLETED")
    assert token_scope_line(exact) == "scopes: sql · uses: sql"
    assert token_scope_line(token(scopes=("jobs",))) == "scopes: jobs"


def test_token_users_text_flags_everyone() -> None:
    posture = Posture(
        True,
        90,
        True,
        (
            TokenUser(GranteeKind.GROUP, "admins", "CAN_MANAGE"),
            TokenUser(GranteeKind.GROUP, "users"),
            TokenUser(GranteeKind.SERVICE_PRINCIPAL, "6f1c", display_name="etl"),
        ),
    )
    text = token_users_text(posture)
    assert "*everyone*" in text and ":warning:" in text
    assert "group `admins` (can manage)" in text and "service principal `etl`" in text


def test_token_users_text_when_unknown_or_only_admins() -> None:
    assert "could not be read" in token_users_text(Posture(True, 90, True, None))
    assert "could not be read" in token_users_text(None)
    assert "nobody but workspace admins" in token_users_text(Posture(True, 90, True, ()))
