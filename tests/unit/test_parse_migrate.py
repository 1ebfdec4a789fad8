"""`/pat migrate` text → a `MigrateAsk`, or a one-line refusal."""

from __future__ import annotations

import pytest

from bot.flows.migrate import MigrateAsk
from handlers.parsing import parse_command, parse_migrate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("etl-pipeline", MigrateAsk("etl-pipeline")),
        ("etl-pipeline workspace=prod", MigrateAsk("etl-pipeline", "prod")),
        ("'Nightly ETL' Workspace=prod", MigrateAsk("Nightly ETL", "prod")),
        ("", None),
    ],
)
def test_parse_migrate(text: str, expected: MigrateAsk | None) -> None:
    assert parse_migrate(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("etl 30d", "Unexpected `30d`"),
        ("etl workspace=", "Unexpected `workspace=`"),
        ("etl workspace=a workspace=b", "Unexpected `workspace=b`"),
        ("'etl", "Unbalanced quotes"),
    ],
)
def test_bad_migrate_text_is_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as err:
        parse_migrate(text)
    assert "\n" not in str(err.value)


def test_migrate_is_a_subcommand() -> None:
    command = parse_command("migrate etl-pipeline workspace=prod")
    assert command.name == "migrate" and command.rest == "etl-pipeline workspace=prod"
