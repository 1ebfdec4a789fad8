"""A sustained run: 5,000 mixed signed Slack requests, 50 at a time, against the real HTTP app.

Mix: /pat help, /pat audit, app_home_opened, and Approve clicks on unknown request ids (refused). Prints
the ack error rate, ack latency p50/p99, how many lazy answers arrived, and the process RSS before and
after. The emulators run in this process too, so the RSS includes them.

Run from the repository root: `.venv/bin/python bench/sustained.py [--requests N] [--concurrency C]`.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from bot.approvals import ApprovalStore, connect_redis
from bot.databricks import workspace_client_factory
from bot.fleet import Fleet
from bot.governance.models import Workspace
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator, demo_fleet
from bot.sandbox.slack_emulator import SlackEmulator
from bot.sandbox.slack_signing import block_action_body, event_body, headers_for, slash_command_body
from bot.services import Services, policy_from
from bot.settings import Settings
from handlers.app import create_app
from handlers.server import make_server, serve_in_thread, stop_server, wsgi_app

SECRET = "bench-signing-secret"


def rss_mib() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--time-limit", type=float, default=600, help="stop sending after this many seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    now = datetime.now(UTC)
    with DatabricksEmulator(demo_fleet(now)) as databricks, SlackEmulator(bot_token="xoxb-bench") as slack:
        users = [
            slack.add_user(name, email=f"{name}@example.com").id for name in ("alice", "bob", "carol", "erin")
        ]
        approver = slack.add_user("ann", email="ann@example.com").id
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            slack_bot_token="xoxb-bench",
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            admin_channel="CADMIN0001",
            approvers=[approver],
            databricks_host="https://unused.invalid",
            scheduler="off",
        )
        client, _ = connect_redis(None)
        fleet = Fleet(
            [
                Workspace(databricks.host_of(n), databricks.workspace(n).workspace_id, n)
                for n in databricks.names
            ],
            workspace_client_factory(token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=10),
        )
        services = Services(
            settings=settings,
            fleet=fleet,
            policy=policy_from(settings),
            redis=client,
            approvals=ApprovalStore(client, ttl=timedelta(hours=24)),
        )
        app, ctx = create_app(settings, services)
        server = make_server(wsgi_app(app, ctx), "127.0.0.1", 0, threads=16)
        thread = serve_in_thread(server)
        url = f"http://127.0.0.1:{server.effective_port}/slack/events"

        def body_for(i: int) -> str:
            user = users[i % len(users)]
            kind = i % 10
            if kind < 4:
                return slash_command_body("/pat", "help", user, "C1", slack.response_url(f"r{i}"))
            if kind < 7:
                return slash_command_body("/pat", "audit", user, "C1", slack.response_url(f"r{i}"))
            if kind < 9:
                return event_body({"type": "app_home_opened", "user": user, "tab": "home", "channel": "D1"})
            return block_action_body(
                approver,
                "pat_approve",
                f"unknown{i:05d}",
                slack.response_url(f"r{i}"),
                channel_id="CADMIN0001",
                message_ts="1.1",
            )

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.time_limit

        def send(i: int) -> None:
            if time.monotonic() > deadline:
                return
            body = body_for(i)
            request = urllib.request.Request(
                url, data=body.encode(), headers=headers_for(body, SECRET), method="POST"
            )
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:
                status = 0
                with lock:
                    errors.append(type(exc).__name__)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != 200 and status != 0:
                    errors.append(str(status))

        rss_before = rss_mib()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(send, range(args.requests)))
        sending = time.perf_counter() - started
        expected_answers = sum(1 for i in range(len(latencies)) if i % 10 < 7 or i % 10 == 9)
        settle = time.monotonic() + 120
        while time.monotonic() < settle and len(slack.response_posts()) < expected_answers:
            time.sleep(0.2)
        total = time.perf_counter() - started
        rss_after = rss_mib()
        answers = len(slack.response_posts())
        latencies.sort()
        stop_server(server, thread)

    n = len(latencies)
    print(f"requests sent: {n:,} at {args.concurrency} concurrent in {sending:.1f} s ({n / sending:,.0f}/s)")
    print(
        f"ack errors: {len(errors)} ({100 * len(errors) / max(n, 1):.2f}%)"
        + (f" — {sorted(set(errors))}" if errors else "")
    )
    print(
        f"ack latency: p50 {1000 * statistics.median(latencies):.1f} ms, "
        f"p99 {1000 * latencies[max(0, int(n * 0.99) - 1)]:.1f} ms, max {1000 * latencies[-1]:.1f} ms"
    )
    print(
        f"lazy answers via response_url: {answers:,} of {expected_answers:,} expected, all in {total:.1f} s"
    )
    print(f"RSS: {rss_before:.0f} MiB before, {rss_after:.0f} MiB after ({rss_after - rss_before:+.0f} MiB)")


if __name__ == "__main__":
    main()
