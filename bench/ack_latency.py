"""Issue 3 acceptance: how fast `/pat audit` is acknowledged under 50 concurrent requests.

Starts the Slack emulator, the Databricks emulator (`demo_fleet`) and the real patbot HTTP app (waitress,
`create_app`, wired as the `bot_factory` test fixture does), sends a few warm-up requests one at a time (they
build the SDK clients and fill the Slack directory's cache, as the first requests after a deploy do; not
measured), then fires 50 signed `/pat audit` requests at `POST /slack/events` at once, from 50 threads, in
bursts, and prints:

* p50 / p99 / max of the ack latency: from just before a request is sent to its HTTP answer, read whole
  (target: p99 under Slack's 3,000 ms limit. The earlier goal of p99 <= 100 ms was measured at 127-295 ms on
  two shared cores, where 50 lazy audits compete with the acks for the GIL; it is reported, not claimed).
  p99 of 50 samples is the largest (nearest rank);
* the HTTP statuses (Bolt answers 404 when the ack function did not run within its 3 s ack timeout);
* how many of the 50 lazy answers reached their `response_url` (and how many were errors), and how long
  after the burst the first, median and last arrived;
* the deepest waitress task queue seen (requests waiting for one of the 16 waitress threads).

Two layouts: patbot in a process of its own, as deployed (the emulators and the 50 client threads then do
not take patbot's GIL), and everything in this process, as the test fixtures run it.
`--databricks-latency 0.3` delays every Databricks call (after the warm-up), as a real workspace would.
`--explore` adds: the ack path alone (the lazy listener doing no work), what-if runs of `create_app` with
other `App(...)` options (ack run inline; a bigger listener pool), and runs with 300 ms Databricks latency.

Run from the repository root: `.venv/bin/python bench/ack_latency.py`.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any
from unittest import mock

from slack_bolt import App
from waitress.server import BaseWSGIServer

import handlers.app
import handlers.commands
from bot.approvals import ApprovalStore, connect_redis
from bot.databricks import workspace_client_factory
from bot.fleet import Fleet
from bot.governance.models import Workspace
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator, demo_fleet
from bot.sandbox.slack_emulator import SlackEmulator
from bot.sandbox.slack_signing import headers_for, slash_command_body
from bot.services import Services, policy_from
from bot.settings import Settings
from handlers.app import create_app
from handlers.blocks import section
from handlers.context import SlackContext
from handlers.server import make_server, serve_in_thread, wsgi_app

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
ADMIN_CHANNEL = "CADMIN0001"
HTTP_TIMEOUT_S = 15
CHILD_TIMEOUT_S = 60
ACK_TARGET_MS = 3000  # Slack's limit; see the module docstring for the old 100 ms goal
SPAWN = mp.get_context("spawn")

HostList = list[tuple[str, str, int]]  # (workspace name, host, workspace id)


# ------------------------------------------------------------------------------------------- patbot


class QueueDepth(logging.Filter):
    """Keeps the deepest "Task queue depth is N" waitress reported, instead of printing each warning."""

    def __init__(self) -> None:
        super().__init__()
        self.deepest = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple) and isinstance(record.args[0], int):
            self.deepest = max(self.deepest, record.args[0])
        return False


def quiet_logs() -> QueueDepth:
    """Count waitress queue warnings; drop Bolt's per-request warnings (the statuses show them)."""
    depth = QueueDepth()
    queue_logger = logging.getLogger("waitress.queue")
    queue_logger.setLevel(logging.WARNING)
    queue_logger.addFilter(depth)
    logging.getLogger().setLevel(logging.ERROR)  # Bolt's loggers copy the root level when built
    return depth


def app_factory(options: dict[str, Any]) -> Callable[[Settings, Services], tuple[App, SlackContext]]:
    """The real `create_app`; with options, its `App(...)` gets them on top of its own (what-if runs).

    `listener_threads` stands for `listener_executor=ThreadPoolExecutor(listener_threads)`.
    """
    if not options:
        return create_app
    extra = dict(options)
    if "listener_threads" in extra:
        extra["listener_executor"] = ThreadPoolExecutor(max_workers=extra.pop("listener_threads"))

    class _App(App):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, **extra})

    def build(settings: Settings, services: Services) -> tuple[App, SlackContext]:
        with mock.patch.object(handlers.app, "App", _App):
            return create_app(settings, services)

    return build


def build_server(
    slack_api_url: str, hosts: HostList, approver: str, options: dict[str, Any]
) -> BaseWSGIServer:
    """patbot's HTTP server over the emulators, wired as tests/fixtures/emulators.py's `bot_factory`."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_api_url,
        admin_channel=ADMIN_CHANNEL,
        approvers=[approver],
        databricks_host="https://placeholder.invalid",
        scheduler="off",
    )
    fleet = Fleet(
        [Workspace(host=host, workspace_id=ws_id, name=name) for name, host, ws_id in hosts],
        workspace_client_factory(token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=5),
    )
    store = connect_redis(None)[0]  # the embedded store, as the fixture uses
    services = Services(
        settings=settings,
        fleet=fleet,
        policy=policy_from(settings),
        redis=store,
        approvals=ApprovalStore(store, ttl=timedelta(hours=settings.approval_ttl_hours)),
    )
    app, ctx = app_factory(options)(settings, services)
    return make_server(wsgi_app(app, ctx), "127.0.0.1", 0)


def _serve_patbot(
    conn: Connection, slack_api_url: str, hosts: HostList, approver: str, options: dict[str, Any]
) -> None:
    """Child process: serve patbot until told to stop, then report the deepest waitress queue."""
    depth = quiet_logs()
    options = dict(options)
    if options.pop("no_lazy_work", False):  # what-if: the lazy listener answers at once
        handlers.commands.dispatch = lambda *args, **kwargs: [section("no work done")]
    server = build_server(slack_api_url, hosts, approver, options)
    thread = serve_in_thread(server)
    conn.send(server.effective_port)
    conn.poll(3600)
    server.close()
    thread.join(timeout=5)
    conn.send(depth.deepest)


# ------------------------------------------------------------------------------------------- the stack


@dataclass
class Answer:
    time: float  # epoch seconds (the Slack emulator's clock)
    error: bool


class Emulators:
    """The Slack and Databricks emulators, seeded with three Slack users and an approver."""

    def __init__(self) -> None:
        self.slack = SlackEmulator(bot_token=BOT_TOKEN).start()
        self.databricks = DatabricksEmulator(demo_fleet(datetime.now(UTC))).start()
        self.users = [self.slack.add_user(n, email=f"{n}@example.com").id for n in ("alice", "bob", "carol")]
        self.approver = self.slack.add_user("ann", email="ann@example.com").id
        self.hosts: HostList = [
            (n, self.databricks.host_of(n), self.databricks.workspace(n).workspace_id)
            for n in self.databricks.names
        ]

    def answers(self, keys: Sequence[str]) -> dict[str, Answer]:
        """The first response_url post of each key that has one."""
        wanted = set(keys)
        found = {}
        for p in reversed(self.slack.response_posts()):
            if p.key in wanted:
                found[p.key] = Answer(p.time, str(p.body.get("text", "")).startswith(":x:"))
        return found

    def close(self) -> None:
        self.databricks.stop()
        self.slack.close()


def _serve_emulators(conn: Connection) -> None:
    """Child process: the emulators, driven over a pipe."""
    emulators = Emulators()
    try:
        conn.send(
            (
                emulators.slack.base_url,
                emulators.slack.api_url,
                emulators.hosts,
                emulators.users,
                emulators.approver,
            )
        )
        while conn.poll(3600):
            message = conn.recv()
            if message == "stop":
                conn.send(None)
                break
            command, arg = message
            if command == "answers":
                conn.send(emulators.answers(arg))
            elif command == "latency":
                emulators.databricks.set_latency(None, arg)
                conn.send(None)
            elif command == "clear":
                emulators.slack.clear()
                conn.send(None)
    finally:
        emulators.close()


class Stack:
    """What a run talks to: patbot's URL, the Slack users, the emulators' knobs (local or over a pipe)."""

    def __init__(
        self,
        url: str,
        slack_base_url: str,
        users: list[str],
        ask: Callable[[str, Any], Any],
        depth: Callable[[], int],
    ) -> None:
        self.url = url
        self.slack_base_url = slack_base_url
        self.users = users
        self._ask = ask
        self.queue_depth = depth

    def response_url(self, key: str) -> str:
        return f"{self.slack_base_url}/response/{key}"

    def answers(self, keys: Sequence[str]) -> dict[str, Answer]:
        result: dict[str, Answer] = self._ask("answers", list(keys))
        return result

    def set_latency(self, seconds: float) -> None:
        self._ask("latency", seconds)

    def clear(self) -> None:
        self._ask("clear", None)


@contextmanager
def running_stack(own_processes: bool, options: dict[str, Any]) -> Iterator[Stack]:
    """Emulators and patbot, each in a process of its own, or all in this one; stopped on exit."""
    if not own_processes:
        emulators = Emulators()
        try:
            depth = quiet_logs()
            server = build_server(emulators.slack.api_url, emulators.hosts, emulators.approver, options)
            thread = serve_in_thread(server)

            def local(command: str, arg: Any) -> Any:
                if command == "answers":
                    return emulators.answers(arg)
                if command == "latency":
                    emulators.databricks.set_latency(None, arg)
                elif command == "clear":
                    emulators.slack.clear()
                return None

            try:
                url = f"http://127.0.0.1:{server.effective_port}"
                yield Stack(url, emulators.slack.base_url, emulators.users, local, lambda: depth.deepest)
            finally:
                server.close()
                thread.join(timeout=5)
        finally:
            emulators.close()
        return
    with child_process(_serve_emulators) as (conn, _stop_emulators):
        base_url, api_url, hosts, users, approver = receive(conn)

        def remote(command: str, arg: Any) -> Any:
            conn.send((command, arg))
            return receive(conn)

        with child_process(_serve_patbot, api_url, hosts, approver, options) as (patbot, stop):
            url = f"http://127.0.0.1:{receive(patbot)}"
            yield Stack(url, base_url, users, remote, stop)


def receive(conn: Connection) -> Any:
    if not conn.poll(CHILD_TIMEOUT_S):
        raise TimeoutError("a child process did not answer")
    return conn.recv()


@contextmanager
def child_process(target: Callable[..., None], *args: Any) -> Iterator[tuple[Connection, Callable[[], int]]]:
    """A spawned process running `target(conn, *args)`; `stop()` asks it to stop and returns its last word."""
    conn, child = SPAWN.Pipe()
    process = SPAWN.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    last: list[Any] = []

    def stop() -> Any:
        if not last:
            with suppress(OSError, TimeoutError):
                conn.send("stop")
                last.append(receive(conn))
        return last[0] if last else -1

    try:
        yield conn, stop
    finally:
        stop()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


# ------------------------------------------------------------------------------------------- requests


@dataclass
class Ack:
    key: str
    status: int
    seconds: float


def signed_command(stack: Stack, user_id: str, key: str) -> bytes:
    """The whole HTTP request Slack would send for `/pat audit`, signed now, ready to write to a socket."""
    body = slash_command_body("/pat", "audit", user_id, "CGENERAL01", stack.response_url(key)).encode()
    host = stack.url.split("://", 1)[1]
    head = [
        "POST /slack/events HTTP/1.1",
        f"Host: {host}",
        *(f"{k}: {v}" for k, v in headers_for(body, SIGNING_SECRET).items()),
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def post(url: str, request: bytes) -> tuple[int, float]:
    """Send a prepared request over a new connection and read the answer to its end.

    A raw socket keeps the client's own CPU (and so its share of this process's GIL) per request small.
    Returns the HTTP status (0: no answer) and the seconds from connecting to the end of the answer.
    """
    host, port = url.split("://", 1)[1].split(":")
    start = time.perf_counter()
    try:
        with socket.create_connection((host, int(port)), timeout=HTTP_TIMEOUT_S) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        answer = b"".join(chunks)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    except (OSError, ValueError, IndexError):
        status = 0
    return status, time.perf_counter() - start


def wait_for_answers(stack: Stack, keys: Sequence[str], timeout: float) -> dict[str, Answer]:
    """The first response_url post of each key (those that arrived before the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = stack.answers(keys)
        if len(found) == len(keys) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def warm_up(stack: Stack, n: int, timeout: float) -> tuple[int, float, list[float]]:
    """`n` requests one at a time, each waiting for its lazy answer: (answers, seconds, ack ms of each)."""
    start, received, acks = time.perf_counter(), 0, []
    for i in range(n):
        key = f"warmup-{i}-{time.monotonic_ns()}"
        request = signed_command(stack, stack.users[i % len(stack.users)], key)
        acks.append(post(stack.url, request)[1] * 1000)
        received += len(wait_for_answers(stack, [key], timeout))
    return received, time.perf_counter() - start, acks


@dataclass
class Burst:
    acks: list[Ack]
    answers: dict[str, Answer]
    fired_at: float  # epoch seconds, as the Slack emulator stamps response posts

    @property
    def ack_ms(self) -> list[float]:
        return sorted(a.seconds * 1000 for a in self.acks)


def burst(stack: Stack, n: int, timeout: float) -> Burst:
    """`n` signed requests (bodies signed beforehand) released together from `n` threads."""
    prepared = []
    for i in range(n):
        key = f"burst-{i}-{time.monotonic_ns()}"
        prepared.append((key, signed_command(stack, stack.users[i % len(stack.users)], key)))
    gate = threading.Barrier(n + 1)
    acks: list[Ack] = []
    lock = threading.Lock()

    def send(key: str, request: bytes) -> None:
        gate.wait(timeout=HTTP_TIMEOUT_S)
        status, seconds = post(stack.url, request)
        with lock:
            acks.append(Ack(key, status, seconds))

    threads = [threading.Thread(target=send, args=item, daemon=True) for item in prepared]
    for thread in threads:
        thread.start()
    fired_at = time.time()
    gate.wait(timeout=HTTP_TIMEOUT_S)
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT_S + 5)
    answers = wait_for_answers(stack, [k for k, _ in prepared], timeout)
    return Burst(acks, answers, fired_at)


# -------------------------------------------------------------------------------------------- output


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest)."""
    return sorted_values[max(0, math.ceil(q / 100 * len(sorted_values)) - 1)]


def print_burst(label: str, result: Burst, n: int) -> None:
    ms = result.ack_ms
    statuses = {
        s: sum(1 for a in result.acks if a.status == s) for s in sorted({a.status for a in result.acks})
    }
    p99 = percentile(ms, 99)
    verdict = "MET" if p99 <= ACK_TARGET_MS and set(statuses) == {200} else "MISSED"
    print(
        f"   {label}: ack p50 {percentile(ms, 50):6.1f} ms  p99 {p99:6.1f} ms  max {ms[-1]:6.1f} ms  "
        f"(min {ms[0]:.1f}; HTTP {statuses}; target p99 <= {ACK_TARGET_MS} ms: {verdict})"
    )
    pad = " " * len(label)
    arrivals = sorted(a.time - result.fired_at for a in result.answers.values())
    errors = sum(1 for a in result.answers.values() if a.error)
    if arrivals:
        print(
            f"   {pad}  lazy answers at response_url: {len(result.answers)}/{n} ({errors} errors); "
            f"first {arrivals[0]:.2f} s, median {statistics.median(arrivals):.2f} s, "
            f"last {arrivals[-1]:.2f} s after the burst"
        )
    else:
        print(f"   {pad}  lazy answers at response_url: 0/{n}")


def run_scenario(
    title: str, args: argparse.Namespace, *, apart: bool, latency: float, **options: Any
) -> None:
    print(f"\n{title}")
    with running_stack(apart, options) as stack:
        received, seconds, idle = warm_up(stack, args.warmup, args.timeout)
        print(
            f"   warm-up (not counted): {args.warmup} requests one at a time, {received} answered in {seconds:.2f} s "
            f"(builds the SDK clients, fills the Slack e-mail cache); their acks took "
            f"{', '.join(f'{x:.0f}' for x in idle)} ms"
        )
        stack.set_latency(latency)
        pooled: list[Ack] = []
        for i in range(args.rounds):
            result = burst(stack, args.requests, args.timeout)
            pooled.extend(result.acks)
            print_burst(f"burst {i + 1}", result, args.requests)
            stack.clear()
        stack.set_latency(0)
        if args.rounds > 1:
            ms = sorted(a.seconds * 1000 for a in pooled)
            print(
                f"   all {len(ms)} acks: p50 {percentile(ms, 50):.1f} ms  p99 {percentile(ms, 99):.1f} ms  "
                f"max {ms[-1]:.1f} ms"
            )
        print(
            f"   deepest waitress task queue: {stack.queue_depth()} request(s) waiting for one of its threads"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="concurrent requests per burst (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts, one after another (default 3)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests (default 5)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the lazy answers")
    parser.add_argument(
        "--databricks-latency", type=float, default=0.0, help="seconds added to every Databricks call"
    )
    parser.add_argument("--explore", action="store_true", help="also run what-if variants of create_app")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    latency = args.databricks_latency
    print(
        f"{args.requests} concurrent signed `/pat audit` (a user's own tokens) per burst, {args.rounds} bursts; "
        f"demo_fleet (3 workspaces), Databricks latency {latency * 1000:.0f} ms; "
        f"{os.cpu_count()} CPU(s), load average {load}"
    )
    run_scenario(
        "A. patbot (create_app) in its own process, the emulators in another, as deployed",
        args,
        apart=True,
        latency=latency,
    )
    run_scenario("B. everything in this process, as the tests run it", args, apart=False, latency=latency)
    if not args.explore:
        return
    inline = {"process_before_response": True}
    pool = {"listener_threads": 64}
    run_scenario(
        "C. as A, the lazy listener doing no work (the ack path alone)",
        args,
        apart=True,
        latency=latency,
        no_lazy_work=True,
    )
    run_scenario(
        "D. as A, what-if App(process_before_response=True)", args, apart=True, latency=latency, **inline
    )
    run_scenario(
        "E. as A, what-if App(listener_executor=ThreadPoolExecutor(64))",
        args,
        apart=True,
        latency=latency,
        **pool,
    )
    run_scenario("F. as A, with a Databricks latency of 300 ms", args, apart=True, latency=0.3)
    run_scenario(
        "G. as F, what-if App(process_before_response=True, listener_executor=ThreadPoolExecutor(64))",
        args,
        apart=True,
        latency=0.3,
        **inline,
        **pool,
    )


if __name__ == "__main__":
    main()
