"""Fleet reports as rows, and as table, JSON and CSV text (used by the CLI and the Slack CSV file)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from bot.governance.migration import PrincipalMigration, fleet_migrations
from bot.governance.models import FleetReport, GranteeKind, Posture, TokenAssessment, WorkspaceReport

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
    "scopes",
    "used_scopes",
)


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def token_row(item: TokenAssessment, workspace_label: str) -> dict[str, Any]:
    """One token as a flat record with ISO 8601 UTC dates."""
    t = item.token
    return {
        "workspace": workspace_label,
        "token_id": t.token_id,
        "owner": t.owner,
        "principal_type": item.principal_type.value,
        "comment": t.comment,
        "created": _iso(t.created),
        "expires": _iso(t.expires),
        "last_used": _iso(t.last_used),
        "findings": [f.value for f in item.findings],
        "days_until_auto_revoke": item.days_until_auto_revoke,
        "scopes": list(t.scopes),  # empty: full access, as Databricks applies it
        "used_scopes": list(t.used_scopes) or None,  # what Databricks inferred it calls, where it did
    }


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


def to_json(report: FleetReport) -> str:
    """The whole report as JSON (with `service_principals` when their OAuth secrets were read)."""
    doc: dict[str, Any] = {
        "generated_at": _iso(report.generated_at),
        "totals": {f.value: n for f, n in report.totals_by_finding().items()},
        "workspaces": [workspace_row(ws) for ws in report.workspaces],
        "tokens": [token_row(t, label) for t, label in _labelled_tokens(report)],
    }
    migrations = fleet_migrations(report)
    if migrations is not None:
        doc["service_principals"] = [migration_row(m) for m in migrations]
    return json.dumps(doc, indent=2)


def to_csv(report: FleetReport) -> str:
    """One CSV line per token (findings joined by `;`), then a line per unreadable workspace."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*TOKEN_COLUMNS, "workspace_error"])
    for item, label in _labelled_tokens(report):
        row = token_row(item, label)
        row["findings"] = ";".join(row["findings"])
        row["scopes"] = ";".join(row["scopes"])
        row["used_scopes"] = ";".join(row["used_scopes"] or ())
        writer.writerow([_csv_safe(row[c]) for c in TOKEN_COLUMNS] + [""])
    for ws in report.failed:
        writer.writerow([ws.workspace.label] + [""] * (len(TOKEN_COLUMNS) - 1) + [_csv_safe(ws.error)])
    return out.getvalue()


def _csv_safe(value: Any) -> Any:
    # Spreadsheet formula injection: a comment such as "=HYPERLINK(...)" must stay text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


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
            str(item.days_until_auto_revoke),
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


def format_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Fixed-width columns, two spaces apart."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]
