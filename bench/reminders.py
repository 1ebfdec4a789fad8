"""A 5,000-owner reminder campaign against the Slack emulator's rate limits, faster than real time.

Limits (emulated, token buckets): ``chat.postMessage`` 600/min with a burst of 10 — Slack documents
one message per second per channel (each DM is its own channel) and an app-wide ceiling of "several
hundred messages per minute"; ``users.list`` Tier 2, 20/min with a burst of 20. Every call also
takes 150 ms of emulated latency.

Prints the campaign time (emulated), its ratio to the theoretical bound (owners / DM rate;
target <= 1.2) and Slack API calls per owner (target <= 1.1). Redis: ``REDIS_URL`` if set, else a
throw-away ``redis-server`` if one is installed, else the embedded store.

    .venv/bin/python -m bench.reminders [--owners 5000] [--time-scale 20]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from slack_sdk import WebClient

from bot.approvals import connect_redis
from bot.databricks import workspace_client_factory
from bot.fleet import Fleet
from bot.governance.findings import Classifier
from bot.governance.models import (
    FleetReport,
    Policy,
    Principal,
    PrincipalType,
    Token,
    Workspace,
    WorkspaceReport,
)
from bot.sandbox.slack_emulator import SlackEmulator
from bot.services import Services, policy_from
from bot.settings import Settings
from bot.weekly import RemindOptions, remind
from handlers.weekly_blocks import reminder_message
from handlers.weekly_chat import SlackChat

BOT_TOKEN = "xoxb-bench"


def fleet_report(emails: list[str], now: datetime) -> FleetReport:
    """One workspace where every owner holds one stale or non-expiring token (and a clean one)."""
    host = "https://bench.cloud.databricks.com"
    principals = {
        i: Principal(str(i), e, f"Owner {i}", PrincipalType.USER, True) for i, e in enumerate(emails, 1)
    }
    classifier = Classifier(Policy(), now)
    tokens = []
    for i, owner in enumerate(emails, 1):
        bad_expiry = None if i % 2 else now + timedelta(days=300)
        bad_use = (now - timedelta(days=1 if i % 2 else 45)).date()
        for n, (expires, used) in enumerate(
            [(bad_expiry, bad_use), (now + timedelta(days=20), (now - timedelta(days=1)).date())]
        ):
            token = Token(
                f"{i:08d}{n:024x}", host, owner, i, "bench", now - timedelta(days=60), expires, used, ("sql",)
            )
            tokens.append(classifier.classify(token, principals))
    workspace = WorkspaceReport(Workspace(host, 1, "bench"), tokens=tokens)
    return FleetReport(generated_at=now, workspaces=[workspace])


@contextlib.contextmanager
def redis_store(url: str | None) -> Iterator[tuple[redis.Redis[Any], str]]:
    """A Redis client: ``url``, else a temporary redis-server, else the embedded store."""
    if url:
        client, _ = connect_redis(url)
        yield client, url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        client, _ = connect_redis(None)
        yield client, "embedded (fakeredis)"
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", data],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client, _ = connect_redis(f"redis://127.0.0.1:{port}/0")
            for _ in range(100):
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        break
                time.sleep(0.05)
            yield client, f"redis-server {port}"
        finally:
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=600.0, help="chat.postMessage limit per minute")
    parser.add_argument("--pace", type=float, default=None, help="patbot's starting pace (default: --rate)")
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--latency", type=float, default=0.15, help="emulated seconds per Slack call")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()

    now = datetime.now(UTC)
    with (
        SlackEmulator(bot_token=BOT_TOKEN, time_scale=args.time_scale) as slack,
        redis_store(args.redis_url) as (store, store_name),
    ):
        users = slack.seed_users(args.owners)
        report = fleet_report([u.email or "" for u in users], now)
        slack.set_rate_limit("chat.postMessage", per_minute=args.rate, burst=10)
        slack.set_rate_limit("users.list", per_minute=20, burst=20)
        slack.set_latency(args.latency)
        store.delete("patbot:slack:users-by-email", "patbot:slack:email-lookups")
        for key in store.scan_iter("patbot:remind:*"):
            store.delete(key)

        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url, scheduler="off"
        )
        services = Services(
            settings=settings,
            fleet=Fleet([], workspace_client_factory(token="unused")),
            policy=policy_from(settings),
            clock=lambda: now,
            redis=store,
        )
        client = SlackChat(WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=30))

        real_start, start = time.perf_counter(), slack.now()
        result = remind(
            services,
            client,
            reminder_message,
            RemindOptions(
                report=report,
                concurrency=args.concurrency,
                rate_per_minute=args.pace or args.rate,
                sleep=slack.sleep,
                clock=slack.now,
            ),
        )
        campaign, real = slack.now() - start, time.perf_counter() - real_start

        calls = slack.calls()
        posts = [c for c in calls if c.method == "chat.postMessage"]
        ok_posts = [c for c in posts if c.status == 200 and not c.error]
        pages = [c for c in calls if c.method == "users.list"]
        dm_phase = ok_posts[-1].time - pages[-1].time if ok_posts and pages else campaign
        bound = args.owners / (args.rate / 60.0)
        per_owner = len(calls) / args.owners
        limited = sum(1 for c in calls if c.status == 429)

    print(f"owners: {args.owners:,} · store: {store_name} · time scale: {args.time_scale:g}x")
    print(
        f"limits: chat.postMessage {args.rate:g}/min (burst 10), users.list 20/min (burst 20), "
        f"latency {args.latency:g} s · concurrency {args.concurrency}"
    )
    print(
        f"DMs sent: {len(result.sent):,} · failed: {len(result.failed)} · "
        f"distinct DM channels: {len({c.args.get('channel') for c in ok_posts}):,}"
    )
    print(
        f"campaign: {campaign:,.1f} s emulated ({real:.1f} s real) · directory walk "
        f"{campaign - dm_phase:,.1f} s · DM phase {dm_phase:,.1f} s"
    )
    print(f"theoretical bound (owners / rate): {bound:,.1f} s → ratio {campaign / bound:.3f} (target <= 1.2)")
    print(
        f"Slack API calls: {len(calls):,} ({len(pages)} users.list, {len(posts):,} chat.postMessage; "
        f"{limited} answered 429) → {per_owner:.3f} per owner (target <= 1.1)"
    )


if __name__ == "__main__":
    main()
