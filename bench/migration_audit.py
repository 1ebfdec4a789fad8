"""What reading the service principals' OAuth secrets adds to a fleet audit (the weekly job's audit).

Prints (no assertions), for `seed_fleet` workspaces answering every call after `--latency` seconds, through
the real databricks-sdk against the in-process emulator: the audit's wall time and request count without and
with `oauth=True` (the service principals listed, then one secrets listing per active principal and
workspace, each a coroutine of the audit's event loop), and the principals per migration state.

Run from the repository root: `.venv/bin/python bench/migration_audit.py [--workspaces 20] [--tokens 200]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from bot.databricks import WorkspaceGateway, workspace_client_factory
from bot.governance.audit import audit_fleet
from bot.governance.migration import count_states, fleet_migrations
from bot.governance.models import Policy, Workspace
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator, seed_fleet


def gateways(emu: DatabricksEmulator) -> list[WorkspaceGateway]:
    factory = workspace_client_factory(token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=30)
    return [
        WorkspaceGateway(Workspace(emu.host_of(n), emu.workspace(n).workspace_id, n), factory)
        for n in emu.names
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per workspace (1 principal per 20)")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with DatabricksEmulator(seed_fleet(args.workspaces, args.tokens, now=now)) as emu:
        emu.set_latency(None, args.latency)
        sps = sum(1 for p in emu.workspace(emu.names[0]).principals if p.kind == "service_principal")
        print(
            f"{args.workspaces} workspaces x {args.tokens} tokens, {sps} service principals each, "
            f"{args.latency * 1000:.0f} ms per call"
        )
        for oauth in (False, True):
            times, calls = [], 0
            report = None
            for _ in range(args.runs):
                gws = gateways(emu)
                for gw in gws:
                    _ = gw.client  # the SDK's host probe is not the audit's cost
                emu.clear_requests()
                start = time.perf_counter()
                report = audit_fleet(gws, Policy(), now=now, max_in_flight=64, oauth=oauth)
                times.append(time.perf_counter() - start)
                calls = emu.count_requests()
            label = "with OAuth secrets" if oauth else "PATs only        "
            print(
                f"  {label}: median {statistics.median(times):.2f} s over {args.runs} runs, "
                f"{calls} requests per audit"
            )
        migrations = fleet_migrations(report) if report is not None else None
        if migrations is not None:
            print("  states:", {s.value: n for s, n in count_states(migrations).items()})


if __name__ == "__main__":
    main()
