"""`patbot log --in-doubt`: requests whose outcome is unknown, and what was and was not done."""

from __future__ import annotations

import json
from typing import TextIO

from bot.approvals import ApprovalStore
from bot.approvals.in_doubt import in_doubt_requests
from bot.report import format_table

EXIT_OK = 0


def run_log_in_doubt(store: ApprovalStore, fmt: str, out: TextIO) -> int:
    """`patbot log --in-doubt`: approved requests without an outcome, and what to check for each."""
    items = in_doubt_requests(store)
    rows = [
        {
            "request": i.request.id,
            "kind": str(i.request.kind),
            "token": i.request.subject,
            "workspace": i.request.workspace,
            "requester": i.request.requester,
            "approver": i.request.decided_by or "",
            "approved_at": i.request.decided_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            if i.request.decided_at
            else "",
            "done": i.done,
            "not_known": i.not_known,
        }
        for i in items
    ]
    if fmt == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    if not rows:
        out.write("(no request is in doubt)\n")
        return EXIT_OK
    header = ("APPROVED AT", "REQUEST", "KIND", "TOKEN", "WORKSPACE", "REQUESTER", "APPROVER")
    keys = ("approved_at", "request", "kind", "token", "workspace", "requester", "approver")
    out.write("\n".join(format_table(header, [tuple(r[k] for k in keys) for r in rows])) + "\n\n")
    for r in rows:
        out.write(f"{r['request']}: {r['done']}.\n  Not known: {r['not_known']}.\n")
    return EXIT_OK
