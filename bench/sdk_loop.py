"""What a user writes without patbot: databricks-sdk directly, over the hosts of `PATBOT_WORKSPACES`.

    serial  a plain loop: one `WorkspaceClient` per host, list its tokens
    pool    the same on a 32-thread pool (the ten lines anyone would write)
    reads   the pool doing patbot's four reads per workspace: token settings, tokens, users, service
            principals (one task per workspace, the reads one after another)
    list    a bare `token_management.list()` of the first host

Prints the number of tokens (and principals) read. Credentials: `DATABRICKS_TOKEN`.
Run: `.venv/bin/python bench/sdk_loop.py serial|pool|reads|list`.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

from databricks.sdk import WorkspaceClient

THREADS = 32


def tokens(host: str) -> int:
    w = WorkspaceClient(host=host, token=os.environ["DATABRICKS_TOKEN"])
    return len(list(w.token_management.list()))


def four_reads(host: str) -> int:
    w = WorkspaceClient(host=host, token=os.environ["DATABRICKS_TOKEN"])
    w.workspace_conf.get_status("enableTokensConfig,maxTokenLifetimeDays")
    n = len(list(w.token_management.list()))
    n += len(list(w.users.list(attributes="id,userName,displayName,active")))
    n += len(list(w.service_principals.list(attributes="id,applicationId,displayName,active")))
    return n


def main(mode: str) -> None:
    hosts = [h for h in os.environ["PATBOT_WORKSPACES"].split(",") if h]
    if mode == "serial":
        total = sum(tokens(h) for h in hosts)
    elif mode == "pool":
        with ThreadPoolExecutor(THREADS) as pool:
            total = sum(pool.map(tokens, hosts))
    elif mode == "reads":
        with ThreadPoolExecutor(THREADS) as pool:
            total = sum(pool.map(four_reads, hosts))
    elif mode == "list":
        total = tokens(hosts[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}; choose serial, pool, reads or list")
    print(f"{mode}: {total} records from {len(hosts) if mode != 'list' else 1} workspace(s)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "serial")
