"""`/pat` text parsing."""

from __future__ import annotations

import pytest

from bot.flows.create import CreateAsk
from bot.flows.scope import ScopeAsk
from handlers.parsing import (
    AuditScope,
    Command,
    parse_audit_scope,
    parse_command,
    parse_create,
    parse_scope_change,
)


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


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("etl 30d", CreateAsk("etl", "30d")),
        ("etl 30d nightly load", CreateAsk("etl", "30d", comment="nightly load")),
        ("etl 30d workspace=prod x", CreateAsk("etl", "30d", "prod", "x")),
        ("etl 30d scopes=sql,jobs:read", CreateAsk("etl", "30d", scopes=("sql", "jobs:read"))),
        (
            "etl 30d SCOPES=sql, jobs:read load",
            CreateAsk("etl", "30d", comment="load", scopes=("sql", "jobs:read")),
        ),
        ("etl 30d autoscope", CreateAsk("etl", "30d", autoscope=True)),
        (
            "'etl job' 12h autoscope scopes=sql workspace=prod the nightly load",
            CreateAsk("etl job", "12h", "prod", "the nightly load", ("sql",), True),
        ),
        ("etl 30d note: autoscope later", CreateAsk("etl", "30d", comment="note: autoscope later")),
        ("etl", None),
    ],
)
def test_parse_create(rest: str, expected: CreateAsk | None) -> None:
    assert parse_create(rest) == expected


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        ("etl 30d scopes=", "`scopes=` needs at least one scope"),
        ("etl 30d scopes=sql scopes=jobs", "`scopes=` is given twice"),
        ("etl 30d workspace=a workspace=b", "`workspace=` is given twice"),
        ("etl 30d 'unbalanced", "Unbalanced quotes"),
    ],
)
def test_parse_create_refuses_unclear_options(rest: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_create(rest)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("0123456789ab", "suggested"), ScopeAsk("0123456789ab", suggested=True)),
        (("0123456789ab", "Suggested"), ScopeAsk("0123456789ab", suggested=True)),
        (("0123456789ab", "sql,jobs:read"), ScopeAsk("0123456789ab", ("sql", "jobs:read"))),
        (("0123456789ab", "sql,", "jobs:read"), ScopeAsk("0123456789ab", ("sql", "jobs:read"))),
        (("0123456789ab", "scopes=sql"), ScopeAsk("0123456789ab", ("sql",))),
        (("0123456789ab",), None),
        ((), None),
    ],
)
def test_parse_scope_change(args: tuple[str, ...], expected: ScopeAsk | None) -> None:
    assert parse_scope_change(args) == expected


def test_scope_is_a_subcommand() -> None:
    assert parse_command("scope 0123456789ab suggested") == Command(
        "scope", ("0123456789ab", "suggested"), "0123456789ab suggested"
    )
