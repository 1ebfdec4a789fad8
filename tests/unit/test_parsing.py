"""`/pat` text parsing."""

from __future__ import annotations

import pytest

from handlers.parsing import AuditScope, Command, parse_audit_scope, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("   ", Command("help")),
        ("help", Command("help", (), "")),
        ("HELP", Command("help", (), "")),
        ("frobnicate now", Command("help", rest="frobnicate")),
        ("audit all", Command("audit", ("all",), "all")),
        (
            "revoke 0123456789ab no longer needed",
            Command("revoke", ("0123456789ab", "no", "longer", "needed"), "0123456789ab no longer needed"),
        ),
    ],
)
def test_parse_command(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), AuditScope("own")),
        (("all",), AuditScope("all")),
        (("ALL",), AuditScope("all")),
        (("<@U123ABC>",), AuditScope("user", "U123ABC")),
        (("<@W123ABC|bob>",), AuditScope("user", "W123ABC")),
        (("Bob@Example.com",), AuditScope("email", "bob@example.com")),
        (("<mailto:bob@example.com|bob@example.com>",), AuditScope("email", "bob@example.com")),
        (("prod",), AuditScope("workspace", "prod")),
        (("adb-123.azuredatabricks.net",), AuditScope("workspace", "adb-123.azuredatabricks.net")),
        (
            ("<https://adb-1.azuredatabricks.net|adb-1.azuredatabricks.net>",),
            AuditScope("workspace", "adb-1.azuredatabricks.net"),
        ),
        (("1234567890",), AuditScope("workspace", "1234567890")),
    ],
)
def test_parse_audit_scope(args: tuple[str, ...], expected: AuditScope) -> None:
    assert parse_audit_scope(args) == expected


def test_slack_escaped_text_is_unescaped_once() -> None:
    command = parse_command("revoke 0123456789ab tom &amp; jerry &lt;!channel&gt;")
    assert command.rest == "0123456789ab tom & jerry <!channel>"
