"""The audit report's token rows: JSON records and CSV lines, spreadsheet formulas kept as text."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from bot.governance.findings import Classifier
from bot.governance.models import Policy, Principal, PrincipalType, Token, Workspace, WorkspaceReport
from bot.report import (
    TOKEN_COLUMNS,
    CsvReportWriter,
    JsonReportWriter,
    _csv_safe,
    csv_cells,
    token_json,
    token_row,
    token_values,
    worst_first,
)

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
BASE = Token(
    token_id="0123456789abcdef0123",
    workspace="https://dbc-1.cloud.databricks.com",
    owner="ana@example.com",
    owner_id=7,
    comment="nightly ETL",
    created=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    expires=datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
    last_used=date(2026, 11, 1),
    scopes=("sql", "jobs:read"),
    inferred_scopes=("sql",),
    autoscope_state="AUTOSCOPE_STATE_COMPLETED",
)
TOKENS = [
    BASE,
    replace(
        BASE, token_id="feedface00000000", comment='=HYPERLINK("http://evil")', expires=None, last_used=None
    ),
    replace(BASE, token_id="beef0000", owner="-cmd@example.com", scopes=(), inferred_scopes=()),
    replace(
        BASE,
        token_id="cafe0000",
        comment="+1 and @me",
        scopes=("@odd",),
        inferred_scopes=(),
        backfill_scopes=("=x",),
    ),
    replace(
        BASE,
        token_id="d00d0000",
        owner="zoë@example.com",
        comment='quote " backslash \\ tab \t newline \n ✓ \x00',
        created=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),  # no microseconds
        expires=datetime(2026, 12, 1, 0, 0, 0, 999999, tzinfo=UTC),
        scopes=("all-apis",),
    ),
]
PRINCIPALS = {7: Principal("7", "ana@example.com", "Ana", PrincipalType.USER, True)}


@pytest.fixture
def items() -> list:
    classifier = Classifier(Policy(), NOW)
    return [classifier.classify(t, PRINCIPALS) for t in TOKENS]


def test_the_row_has_every_column_with_iso_dates(items: list) -> None:
    row = token_row(items[0], "+prod")
    assert tuple(row) == TOKEN_COLUMNS
    assert row["created"] == "2026-01-02T03:04:05Z" and row["expires"] == "2027-01-02T03:04:05Z"
    assert row["last_used"] == "2026-11-01" and row["principal_type"] == "user"
    assert row["scopes"] == ["sql", "jobs:read"] and row["used_scopes"] == ["sql"]
    assert json.loads(json.dumps(row)) == row


def test_csv_cells_are_the_safe_token_values(items: list) -> None:
    for item in items:
        for label in ("prod", "=ws", "-ws"):
            assert csv_cells(item, label) == [*map(_csv_safe, token_values(item, label)), ""]


def test_a_json_line_is_json_dumps_of_the_row(items: list) -> None:
    for item in items:
        for label in ("prod", 'a "quoted" ws', "café"):
            assert token_json(item, json.dumps(label)) == json.dumps(token_row(item, label))


def test_worst_first_ranks_by_severity_then_workspace_then_id(items: list) -> None:
    elsewhere = [replace(i, token=replace(i.token, workspace="https://a")) for i in items]
    ws = WorkspaceReport(workspace=Workspace(host="https://x"), tokens=items + elsewhere)
    key = lambda i: (-i.severity, i.token.workspace, i.token.token_id)  # noqa: E731
    assert worst_first(ws) == sorted(items + elsewhere, key=key)
    assert len({i.severity for i in items}) > 1


def test_spreadsheet_formulas_stay_text(items: list) -> None:
    out = io.StringIO()
    writer = CsvReportWriter(out)
    writer.add(WorkspaceReport(workspace=Workspace(host="https://x", name="=ws"), tokens=items))
    writer.close()
    lines = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert {line["comment"] for line in lines} >= {'\'=HYPERLINK("http://evil")', "'+1 and @me"}
    assert {line["workspace"] for line in lines} == {"'=ws"}
    assert "'-cmd@example.com" in {line["owner"] for line in lines}
    assert "'@odd" in {line["scopes"] for line in lines} and "'=x" in {line["used_scopes"] for line in lines}
    for line in lines:
        assert not any(value[:1] in "=+-@" for value in line.values() if value)


def test_json_writer_writes_one_token_per_line_worst_first(items: list) -> None:
    out = io.StringIO()
    writer = JsonReportWriter(out, NOW)
    writer.add(WorkspaceReport(workspace=Workspace(host="https://x"), tokens=items))
    writer.close()
    doc = json.loads(out.getvalue())
    assert len(doc["tokens"]) == len(TOKENS) and doc["generated_at"] == "2026-11-30T09:30:00Z"
    ranked = [t["token_id"] for t in doc["tokens"]]
    worst_first = sorted(items, key=lambda i: (-i.severity, i.token.token_id))
    assert ranked == [i.token.token_id for i in worst_first]
    assert worst_first[0].severity > worst_first[-1].severity
    n = len(TOKENS)
    assert out.getvalue().count('"token_id"') == n and out.getvalue().count("\n    {") == n + 1


def test_json_writer_writes_thousands_of_tokens_in_batches_and_workspaces_after_each_other(
    items: list,
) -> None:
    many = [replace(items[k % len(items)], token=replace(BASE, token_id=f"t{k:05d}")) for k in range(2500)]
    out = io.StringIO()
    writer = JsonReportWriter(out, NOW)
    writer.add(WorkspaceReport(workspace=Workspace(host="https://x"), tokens=many))
    writer.add(WorkspaceReport(workspace=Workspace(host="https://empty")))
    writer.add(WorkspaceReport(workspace=Workspace(host="https://y"), tokens=items))
    writer.close()
    doc = json.loads(out.getvalue())
    assert sorted(t["token_id"] for t in doc["tokens"]) == sorted(
        [f"t{k:05d}" for k in range(2500)] + [t.token_id for t in TOKENS]
    )
    assert [w["token_count"] for w in doc["workspaces"]] == [2500, 0, len(TOKENS)]
    assert out.getvalue().count("\n    {") == 2500 + len(TOKENS) + 3
