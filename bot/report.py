"""Fleet reports as rows, and as table, JSON and CSV text (used by the CLI and the Slack CSV file)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_str  # what json.dumps writes a string as (C)
from typing import Any, Protocol, TextIO

from bot.governance.lifetime import AutoRevocationState, auto_revocation
from bot.governance.migration import PrincipalMigration
from bot.governance.models import (
    FINDING_SEVERITY,
    Finding,
    FleetReport,
    GranteeKind,
    Posture,
    TokenAssessment,
    WorkspaceReport,
)

# The columns of the JSON and CSV reports, in order; `token_values` gives a token's values in this order.
TOKEN_COLUMNS = (
    "workspace",
    "token_id",
    "owner",
    "principal_type",
    "comment",
    "created",
    "expires",
    "last_used",
    "findings",
    "days_until_auto_revoke",
    "scopes",  # empty: full access, as Databricks applies it
    "used_scopes",  # what Databricks saw it call (None: not known)
)


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _timestamp(value)
    return value.isoformat()


def _timestamp(value: datetime) -> str:
    """`2026-11-30T09:00:00Z`: what `strftime("%Y-%m-%dT%H:%M:%SZ")` writes, in a third of the time (and in
    three fifths of `isoformat`'s, which an aware datetime spends mostly on its offset)."""
    return _STAMP % (value.year, value.month, value.day, value.hour, value.minute, value.second)


_STAMP = "%04d-%02d-%02dT%02d:%02d:%02dZ"
_JSON_STAMP = '"' + _STAMP + '"'


def token_values(item: TokenAssessment, workspace_label: str) -> list[Any]:
    """One token's values in `TOKEN_COLUMNS` order, dates in ISO 8601 UTC (list values stay lists).

    Written out once per token of the fleet, so spelled out rather than looked up: the enums are `StrEnum`s,
    which JSON and CSV write as their values.
    """
    token = item.token
    expires, last_used = token.expires, token.last_used
    return [
        workspace_label,
        token.token_id,
        token.owner,
        item.principal_type,
        token.comment,
        _timestamp(token.created),
        None if expires is None else _timestamp(expires),
        None if last_used is None else last_used.isoformat(),
        list(item.findings),
        item.days_until_auto_revoke,
        list(token.scopes),
        list(token.used_scopes) or None,
    ]


def token_row(item: TokenAssessment, workspace_label: str) -> dict[str, Any]:
    """One token as a flat record with ISO 8601 UTC dates."""
    return dict(zip(TOKEN_COLUMNS, token_values(item, workspace_label), strict=True))


def token_json(item: TokenAssessment, label_json: str) -> str:
    """`json.dumps(token_row(item, label))`, character for character, with `label_json` the label as JSON.

    Written once per token of the fleet, so spelled out: a dict per token handed to `json.dumps` was most of
    the JSON report's time. A test holds it to `json.dumps(token_row(…))`.
    """
    token = item.token
    expires, last_used, used = token.expires, token.last_used, token.used_scopes
    return (
        f'{{"workspace": {label_json}, "token_id": {_json_str(token.token_id)}, '
        f'"owner": {_json_str(token.owner)}, "principal_type": "{item.principal_type.value}", '
        f'"comment": {_json_str(token.comment)}, '
        f'"created": {_json_timestamp(token.created)}, '
        f'"expires": {"null" if expires is None else _json_timestamp(expires)}, '
        f'"last_used": {"null" if last_used is None else _json_day(last_used)}, '
        f'"findings": {_json_list(item.findings)}, "days_until_auto_revoke": {item.days_until_auto_revoke}, '
        f'"scopes": {_json_list(token.scopes)}, "used_scopes": {_json_list(used) if used else "null"}}}'
    )


def _json_timestamp(value: datetime) -> str:
    return _JSON_STAMP % (value.year, value.month, value.day, value.hour, value.minute, value.second)


def _json_day(value: date) -> str:
    return '"' + value.isoformat() + '"'  # digits and dashes: nothing to escape


@lru_cache(maxsize=4096)
def _json_list(values: tuple[str, ...]) -> str:
    # Findings and scopes: a fleet repeats a few combinations many times over.
    return json.dumps(list(values))


def workspace_row(ws: WorkspaceReport) -> dict[str, Any]:
    """One workspace's posture, or its failure."""
    posture = ws.posture
    return {
        "workspace": ws.workspace.label,
        "host": ws.workspace.host,
        "workspace_id": ws.workspace.workspace_id,
        "tokens_enabled": posture.tokens_enabled if posture else None,
        "max_token_lifetime_days": posture.max_token_lifetime_days if posture else None,
        "max_token_lifetime_set": posture.max_lifetime_set if posture else None,
        "token_users": _token_users_json(posture),
        "everyone_may_use_tokens": posture.everyone_may_use_tokens if posture else None,
        "token_count": len(ws.tokens),
        "error": ws.error,
        "warnings": list(ws.warnings),
    }


def _token_users_json(posture: Posture | None) -> list[dict[str, str]] | None:
    if posture is None or posture.token_users is None:
        return None
    return [{"kind": u.kind.value, "name": u.name, "permission": u.permission} for u in posture.token_users]


def _token_users_cell(posture: Posture | None) -> str:
    # The admins group always holds CAN_MANAGE; the cell names who else may use tokens.
    if posture is None or posture.token_users is None:
        return "?"
    names = [u.name for u in posture.token_users if not (u.kind is GranteeKind.GROUP and u.name == "admins")]
    text = ", ".join(names) or "admins only"
    return "EVERYONE: " + text if posture.everyone_may_use_tokens else text


def worst_first(ws: WorkspaceReport) -> list[TokenAssessment]:
    """A workspace's tokens, worst first (the order of `FleetReport.tokens`)."""
    # Three stable sorts, last key first: each compares plain strings or ints, which is several times
    # faster than comparing a tuple per token.
    ranked = sorted(ws.tokens, key=lambda t: t.token.token_id)
    ranked.sort(key=lambda t: t.token.workspace)
    ranked.sort(key=lambda t: -t.severity)
    return ranked


def _labelled_tokens(report: FleetReport) -> list[tuple[TokenAssessment, str]]:
    labels = {ws.workspace.host: ws.workspace.label for ws in report.workspaces}
    return [(t, labels.get(t.token.workspace, t.token.workspace)) for t in report.tokens]


def migration_row(item: PrincipalMigration) -> dict[str, Any]:
    """One service principal's move from PATs to OAuth in one workspace, with its secrets (never values)."""
    standing = item.standing
    return {
        "workspace": item.workspace,
        "principal_id": item.principal.id,
        "application_id": item.principal.name,
        "display_name": item.principal.display_name,
        "state": item.state.value,
        "migrated_on": _iso(standing.migrated_on),
        "pats_last_used": _iso(standing.pats_last_used),
        "propose_pat_revocation": standing.propose_revocation,
        "pats": [p.token.token_id for p in item.pats],
        "oauth_secrets": [
            {
                "id": s.secret.secret_id,
                "created": _iso(s.secret.created),
                "expires": _iso(s.secret.expires),
                "scopes": list(s.secret.scopes),  # empty: unrestricted
                "findings": [f.value for f in s.findings],
            }
            for s in item.secrets
        ],
    }


class ReportWriter(Protocol):
    """Writes a report as its workspaces arrive: `add` each, then `close`."""

    def add(self, ws: WorkspaceReport) -> None:
        """Write one workspace's tokens (worst first) and remember its posture or failure."""

    def close(self) -> None:
        """Write what comes after the tokens."""


class JsonReportWriter:
    """The JSON report, one token per line, written as workspaces arrive.

    The document has `generated_at`, `tokens`, `workspaces` and `totals`; the totals come last because
    they are known only once every workspace has been read. When the service principals' OAuth secrets
    were read, `service_principals` follows with each one's move from PATs to OAuth.
    """

    def __init__(self, out: TextIO, generated_at: datetime) -> None:
        self._out = out
        self._first = True
        self._workspaces: list[dict[str, Any]] = []
        self._totals = dict.fromkeys(sorted(Finding, key=lambda f: -FINDING_SEVERITY[f]), 0)
        self._migrations: list[dict[str, Any]] | None = None
        out.write(f'{{\n  "generated_at": {json.dumps(_iso(generated_at))},\n  "tokens": [')

    def add(self, ws: WorkspaceReport) -> None:
        self.tokens((item, ws.workspace.label) for item in worst_first(ws))
        self.note(ws)

    def note(self, ws: WorkspaceReport) -> None:
        """Count a workspace in `workspaces` and `totals` (its tokens are written apart)."""
        self._workspaces.append(workspace_row(ws))
        if ws.migrations is not None:
            self._migrations = (self._migrations or []) + [migration_row(m) for m in ws.migrations]
        for item in ws.tokens:
            for finding in item.findings:
                self._totals[finding] += 1

    def tokens(self, items: Iterable[tuple[TokenAssessment, str]]) -> None:
        """Write token records (without counting them in the totals)."""
        lines = []
        labels: dict[str, str] = {}
        for item, label in items:
            label_json = labels.get(label) or labels.setdefault(label, _json_str(label))
            lines.append(token_json(item, label_json))
            if len(lines) >= 1000:  # bounded: a workspace of 100,000 tokens is not held as text
                self._write(lines)
                lines.clear()
        self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if lines:
            self._out.write(("\n    " if self._first else ",\n    ") + ",\n    ".join(lines))
            self._first = False

    def close(self) -> None:
        rows = ",\n    ".join(json.dumps(row) for row in self._workspaces)
        totals = json.dumps({f.value: n for f, n in self._totals.items()})
        closing = "\n  ]" if not self._first else "]"
        workspaces = f"[\n    {rows}\n  ]" if rows else "[]"
        self._out.write(f'{closing},\n  "workspaces": {workspaces},\n  "totals": {totals}')
        if self._migrations is not None:
            principals = ",\n    ".join(json.dumps(row) for row in self._migrations)
            listed = f"[\n    {principals}\n  ]" if principals else "[]"
            self._out.write(f',\n  "service_principals": {listed}')
        self._out.write("\n}\n")


class CsvReportWriter:
    """One CSV line per token (list values joined by `;`), then a line per unreadable workspace."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self._failed: list[WorkspaceReport] = []
        self._writer.writerow([*TOKEN_COLUMNS, "workspace_error"])

    def add(self, ws: WorkspaceReport) -> None:
        self.tokens((item, ws.workspace.label) for item in worst_first(ws))
        self.note(ws)

    def note(self, ws: WorkspaceReport) -> None:
        """Remember a workspace's failure for the closing lines (its tokens are written apart)."""
        if ws.failed:
            self._failed.append(ws)

    def tokens(self, items: Iterable[tuple[TokenAssessment, str]]) -> None:
        """Write token lines."""
        self._writer.writerows(csv_cells(item, label) for item, label in items)

    def close(self) -> None:
        blanks = [""] * (len(TOKEN_COLUMNS) - 1)
        for ws in self._failed:
            self._writer.writerow([ws.workspace.label, *blanks, _csv_safe(ws.error)])


class TableReportWriter:
    """The terminal table: its columns are as wide as their widest cell, so it is written at the end."""

    def __init__(self, out: TextIO, generated_at: datetime) -> None:
        self._out = out
        self._report = FleetReport(generated_at=generated_at, workspaces=[])

    def add(self, ws: WorkspaceReport) -> None:
        self._report.workspaces.append(ws)

    def close(self) -> None:
        self._out.write(to_table(self._report))


def to_json(report: FleetReport) -> str:
    """The whole report as JSON, tokens worst first across the fleet (with `service_principals` when their
    OAuth secrets were read)."""
    out = io.StringIO()
    writer = JsonReportWriter(out, report.generated_at)
    writer.tokens(_labelled_tokens(report))
    for ws in report.workspaces:
        writer.note(ws)
    writer.close()
    return out.getvalue()


def to_csv(report: FleetReport) -> str:
    """One CSV line per token worst first across the fleet (findings joined by `;`), then a line per
    unreadable workspace."""
    out = io.StringIO()
    writer = CsvReportWriter(out)
    writer.tokens(_labelled_tokens(report))
    for ws in report.workspaces:
        writer.note(ws)
    writer.close()
    return out.getvalue()


_FORMULA_STARTS = frozenset("=+-@")


def csv_cells(item: TokenAssessment, workspace_label: str) -> list[Any]:
    """One token's CSV line: `token_values` made safe for spreadsheets (`_csv_safe`), and an empty
    `workspace_error`. Spelled out for speed; a test holds it to `_csv_safe` over `token_values`."""
    token = item.token
    expires, last_used = token.expires, token.last_used
    return [
        _csv_text(workspace_label),
        _csv_text(token.token_id),
        _csv_text(token.owner),
        item.principal_type,
        _csv_text(token.comment),
        _timestamp(token.created),
        "" if expires is None else _timestamp(expires),
        "" if last_used is None else last_used.isoformat(),
        ";".join(item.findings),
        item.days_until_auto_revoke,
        _csv_text(";".join(token.scopes)),
        _csv_text(";".join(token.used_scopes)),
        "",
    ]


def _csv_text(value: str) -> str:
    return "'" + value if value[:1] in _FORMULA_STARTS else value


def _csv_safe(value: Any) -> Any:
    # Spreadsheet formula injection: a comment such as "=HYPERLINK(...)" must stay text.
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ";".join(map(str, value))
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def to_table(report: FleetReport) -> str:
    """A fixed-width table for terminals: workspaces, then tokens worst first."""
    lines = []
    ws_rows = [
        (
            ws.workspace.label,
            "FAILED" if ws.failed else ("on" if ws.posture and ws.posture.tokens_enabled else "off"),
            "" if ws.posture is None else str(ws.posture.max_token_lifetime_days),
            str(len(ws.tokens)),
            _token_users_cell(ws.posture),
            ws.error or "; ".join(ws.warnings),
        )
        for ws in report.workspaces
    ]
    lines += format_table(("WORKSPACE", "PATS", "MAX_DAYS", "TOKENS", "TOKEN_USERS", "NOTE"), ws_rows)
    lines.append("")
    token_rows = [
        (
            label,
            item.token.short_id,
            item.token.owner,
            item.principal_type.value,
            _iso(item.token.expires) or "never",
            _iso(item.token.last_used) or "never",
            ",".join(f.value for f in item.findings) or "-",
            _auto_revoke_cell(item),
        )
        for item, label in _labelled_tokens(report)
    ]
    lines += format_table(
        ("WORKSPACE", "TOKEN", "OWNER", "TYPE", "EXPIRES", "LAST_USED", "FINDINGS", "AUTO_REVOKE_IN"),
        token_rows,
    )
    totals = ", ".join(f"{f.value}={n}" for f, n in report.totals_by_finding().items() if n)
    lines.append("")
    lines.append(
        f"{len(token_rows)} tokens in {len(report.workspaces)} workspaces; {totals or 'no findings'}"
    )
    return "\n".join(lines) + "\n"


def _auto_revoke_cell(item: TokenAssessment) -> str:
    """Days left before Databricks' inactivity revocation; `due` past the limit, `expired` when unusable."""
    state = auto_revocation(item).state
    if state is AutoRevocationState.EXPIRED:
        return "expired"
    if state is AutoRevocationState.DUE:
        return "due"
    return str(item.days_until_auto_revoke)


def format_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Fixed-width columns, two spaces apart."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]
