"""Issue 2 acceptance: fleet audit wall time, classification rate and peak memory.

Prints (no assertions):

* the wall time of `audit_fleet` over 100 emulated workspaces (`seed_fleet`, 50 tokens each) answering every
  call after 300 ms, through the real databricks-sdk, with the default concurrency
  (`Settings.audit_concurrency`, 64). Gateways are built fresh for every run, so each run also pays the
  SDK's `/.well-known/databricks-config` probe (one more delayed request per workspace), reported apart;
* the same audit one workspace at a time (`max_workers=1`: one pool thread, so the four reads of a
  workspace also run one after another, as does its probe). That run is strictly linear in the number of
  workspaces, so by default it covers a sample (`--baseline-workspaces`) and is scaled to the fleet;
* the ratio between the two (targets: >= 20x faster than one at a time, and under 2 s);
* the classification rate of 100,000 tokens (target >= 200,000 tokens/s), with the tokens of
  `bench/classify.py`, and the peak memory (tracemalloc and the RSS high-water mark) both of that and of
  a whole audit of 100,000 tokens (100 workspaces x 1,000 tokens) through the SDK.

The emulator runs in its own process: a real Databricks does not share patbot's GIL, and this machine may
have only two cores. One more run puts it in this process, as the test fixtures do, to show what that costs.
`--explore` adds what-if runs (other concurrencies, SDK clients built before the audit).

Run from the repository root: `.venv/bin/python bench/audit_fleet.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing as mp
import os
import resource
import statistics
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot.databricks import WorkspaceGateway, workspace_client_factory
from bot.governance.audit import audit_fleet
from bot.governance.findings import Classifier
from bot.governance.models import FleetReport, Policy, Principal, PrincipalType, Workspace
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator, seed_fleet
from bot.settings import Settings

N_WORKSPACES = 100
TOKENS_PER_WORKSPACE = 50
LATENCY_S = 0.3
CLASSIFY_TOKENS = 100_000
MEMORY_TOKENS_PER_WORKSPACE = 1_000  # 100 workspaces x 1,000 = 100,000 tokens through the SDK
DEFAULT_CONCURRENCY = Settings.model_fields["audit_concurrency"].default
CHILD_TIMEOUT_S = 300
SPAWN = mp.get_context("spawn")

HostList = list[tuple[str, str, int]]  # (name, host, workspace id)


# ---------------------------------------------------------------------------------- emulator process


def _serve_emulator(
    conn: Connection, n_workspaces: int, tokens_per_workspace: int, latency: float, now: datetime
) -> None:
    """Child process: serve a seeded fleet until told to stop; answer request-count queries."""
    with DatabricksEmulator(seed_fleet(n_workspaces, tokens_per_workspace, now=now)) as emulator:
        emulator.set_latency(None, latency)
        conn.send([(n, emulator.host_of(n), emulator.workspace(n).workspace_id) for n in emulator.names])
        while conn.poll(CHILD_TIMEOUT_S * 4):
            command = conn.recv()
            if command == "stop":
                break
            if command == "requests":  # paths answered since the last query
                conn.send(dict(Counter(r.path for r in emulator.requests)))
                emulator.clear_requests()


class EmulatorProcess:
    """A `DatabricksEmulator` in a process of its own (started on enter, stopped on exit)."""

    def __init__(self, n_workspaces: int, tokens_per_workspace: int, latency: float, now: datetime) -> None:
        self._conn, child = SPAWN.Pipe()
        self._process = SPAWN.Process(
            target=_serve_emulator,
            args=(child, n_workspaces, tokens_per_workspace, latency, now),
            name="databricks-emulator",
            daemon=True,
        )
        self.hosts: HostList = []

    def __enter__(self) -> EmulatorProcess:
        self._process.start()
        self.hosts = self._ask(None)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)

    def requests(self) -> Counter[str]:
        """Requests answered (by path) since the last call."""
        return Counter(self._ask("requests"))

    def _ask(self, command: str | None) -> Any:
        if command is not None:
            self._conn.send(command)
        if not self._conn.poll(CHILD_TIMEOUT_S):
            raise TimeoutError("the emulator process did not answer")
        return self._conn.recv()


# ------------------------------------------------------------------------------------------- audit runs


@dataclass
class TimedFactory:
    """The real client factory, recording when each SDK client build (and its host probe) ran."""

    spans: list[tuple[float, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _inner: Callable[[Workspace], Any] = field(
        default_factory=lambda: workspace_client_factory(token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=10)
    )

    def __call__(self, workspace: Workspace) -> Any:
        start = time.perf_counter()
        try:
            return self._inner(workspace)
        finally:
            end = time.perf_counter()
            with self._lock:
                self.spans.append((start, end))


@dataclass
class Run:
    wall: float
    cpu: float
    report: FleetReport
    builds: list[tuple[float, float]]
    start: float
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def tokens(self) -> int:
        return sum(len(ws.tokens) for ws in self.report.workspaces)

    def describe(self) -> str:
        failed = len(self.report.failed)
        text = (
            f"{self.wall:6.2f} s  (cpu {self.cpu:.2f} s, {self.tokens:,} tokens, {failed} failed workspaces)"
        )
        return text

    def build_summary(self) -> str:
        if not self.builds:
            return "no SDK client built (reused)"
        each = statistics.mean(end - start for start, end in self.builds)
        last = max(end for _, end in self.builds) - self.start
        return (
            f"{len(self.builds)} SDK clients built (each {each * 1000:.0f} ms on average, mostly the "
            f"well-known probe); the last one ready {last:.2f} s into the run"
        )


def gateways_for(hosts: HostList, factory: TimedFactory) -> list[WorkspaceGateway]:
    return [WorkspaceGateway(Workspace(host=h, workspace_id=i, name=n), factory) for n, h, i in hosts]


def timed_audit(
    gateways: Sequence[WorkspaceGateway], factory: TimedFactory, workers: int, now: datetime
) -> Run:
    factory.spans.clear()
    cpu0, start = time.process_time(), time.perf_counter()
    report = audit_fleet(gateways, Policy(), now=now, max_workers=workers)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return Run(wall, cpu, report, list(factory.spans), start)


def cold_audit(hosts: HostList, workers: int, now: datetime, emulator: EmulatorProcess | None) -> Run:
    """An audit with fresh gateways: SDK client construction (and its probe) counted in the wall time."""
    factory = TimedFactory()
    run = timed_audit(gateways_for(hosts, factory), factory, workers, now)
    if emulator is not None:
        run.requests = emulator.requests()
    return run


def describe_requests(requests: Counter[str], n_workspaces: int) -> str:
    total = sum(requests.values())
    probe = requests.get("/.well-known/databricks-config", 0)
    scim = sum(v for k, v in requests.items() if "/scim/" in k)
    return (
        f"{total} requests = {total / n_workspaces:.0f} per workspace: {probe} well-known probes, "
        f"{scim} SCIM pages, "
        f"{total - probe - scim} others"
    )


def prebuilt_audit(hosts: HostList, workers: int, now: datetime) -> tuple[float, Run]:
    """What-if: build every SDK client in parallel first (outside the audit pool), then audit."""
    factory = TimedFactory()
    gateways = gateways_for(hosts, factory)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(gateways)) as pool:
        list(pool.map(lambda gw: gw.client, gateways))
    built = time.perf_counter() - start
    return built, timed_audit(gateways, factory, workers, now)


def in_process_audit(workers: int, now: datetime) -> Run:
    """The same cold audit with the emulator's HTTP servers in this process (as the test fixtures run it)."""
    with DatabricksEmulator(seed_fleet(N_WORKSPACES, TOKENS_PER_WORKSPACE, now=now)) as emulator:
        emulator.set_latency(None, LATENCY_S)
        hosts = [(n, emulator.host_of(n), emulator.workspace(n).workspace_id) for n in emulator.names]
        return cold_audit(hosts, workers, now, None)


# ----------------------------------------------------------------------------- memory and classification


def _load_classify_bench() -> Any:
    path = Path(__file__).with_name("classify.py")
    spec = importlib.util.spec_from_file_location("bench_classify", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _status_mib(key: str) -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def rss_baseline() -> float:
    """The current RSS, after which the high-water mark is reset (Linux), so the peak is this step's own.

    `getrusage().ru_maxrss` survives execve, so a spawned child would report its parent's peak; the
    kernel's per-process VmHWM does not, and writing 5 to /proc/self/clear_refs resets it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    current = _status_mib("VmRSS")
    return current if current is not None else rss_peak()


def rss_peak() -> float:
    """The RSS high-water mark (VmHWM; ru_maxrss where /proc is missing)."""
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _classification_child() -> dict[str, float]:
    """Child process: rate and memory of classifying bench/classify.py's 100,000 tokens."""
    make_tokens = _load_classify_bench().make_tokens
    now = datetime(2026, 11, 25, tzinfo=UTC)
    rss_base = rss_baseline()

    def build() -> tuple[list[Any], dict[int, Principal], Classifier]:
        principals = {
            i: Principal(str(i), f"user{i}@example.com", f"User {i}", PrincipalType.USER, i % 7 != 0)
            for i in range(5000)
        }
        return make_tokens(CLASSIFY_TOKENS, now), principals, Classifier(Policy(), now)

    tokens, principals, classifier = build()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        results = [classifier.classify(t, principals) for t in tokens]
        times.append(time.perf_counter() - start)
        del results
    rss_high = rss_peak()
    del tokens, principals, classifier
    tracemalloc.start()
    tokens, principals, classifier = build()
    results = [classifier.classify(t, principals) for t in tokens]
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n": len(results),
        "best": min(times),
        "median": statistics.median(times),
        "traced_peak_mib": traced_peak / 2**20,
        "rss_base_mib": rss_base,
        "rss_peak_mib": rss_high,
    }


def _audit_memory_child(hosts: HostList, now: datetime) -> dict[str, float]:
    """Child process: peak memory of one whole audit of 100,000 tokens (SDK parsing included)."""
    rss_base = rss_baseline()
    factory = TimedFactory()
    gateways = gateways_for(hosts, factory)
    start = time.perf_counter()
    report = audit_fleet(gateways, Policy(), now=now, max_workers=DEFAULT_CONCURRENCY)
    wall = time.perf_counter() - start
    tokens = sum(len(ws.tokens) for ws in report.workspaces)
    rss_high = rss_peak()
    del report
    tracemalloc.start()  # again with tracemalloc (clients reused, so no probe allocations counted)
    report = audit_fleet(gateways, Policy(), now=now, max_workers=DEFAULT_CONCURRENCY)
    held, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "tokens": tokens,
        "wall": wall,
        "rss_base_mib": rss_base,
        "rss_peak_mib": rss_high,
        "traced_peak_mib": traced_peak / 2**20,
        "traced_held_mib": held / 2**20,
        "failed": len(report.failed),
    }


def in_child(function: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    """Run a measurement in a fresh process so its RSS high-water mark is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as pool:
        return pool.submit(function, *args).result(timeout=CHILD_TIMEOUT_S)


# ------------------------------------------------------------------------------------------------ main


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold concurrent runs (default 3)")
    parser.add_argument(
        "--baseline-workspaces",
        type=int,
        default=10,
        help=f"workspaces audited one at a time, scaled to {N_WORKSPACES} (default 10; {N_WORKSPACES}: all)",
    )
    parser.add_argument(
        "--explore",
        action="store_true",
        help="what-if runs: prebuilt clients, other concurrencies, one-page SCIM lists",
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip the 100,000-token audit")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    now = datetime.now(UTC)
    workers = DEFAULT_CONCURRENCY
    print(
        f"fleet: {N_WORKSPACES} emulated workspaces x {TOKENS_PER_WORKSPACE} tokens, {LATENCY_S * 1000:.0f} ms "
        f"per request, real databricks-sdk; emulator in its own process; "
        f"{os.cpu_count()} CPU(s), load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )

    with EmulatorProcess(N_WORKSPACES, TOKENS_PER_WORKSPACE, LATENCY_S, now) as emulator:
        hosts = emulator.hosts
        emulator.requests()  # forget start-up traffic (none expected)

        print(f"\n1. concurrent audit, max_workers={workers} (default), fresh gateways each run")
        runs = []
        for i in range(args.runs):
            run = cold_audit(hosts, workers, now, emulator)
            runs.append(run)
            print(f"   run {i + 1}: {run.describe()}")
        print(f"   {runs[0].build_summary()}")
        print(f"   {describe_requests(runs[0].requests, N_WORKSPACES)}")
        concurrent = statistics.median(r.wall for r in runs)
        print(f"   median: {concurrent:.2f} s")

        base_n = max(1, min(args.baseline_workspaces, N_WORKSPACES))
        print(f"\n2. one workspace at a time: max_workers=1 over {base_n} workspace(s)")
        print(
            "   (one pool thread: the probe and the four reads of each workspace also run one after another)"
        )
        baseline = cold_audit(hosts[:base_n], 1, now, emulator)
        per_workspace = baseline.wall / base_n
        sequential = per_workspace * N_WORKSPACES
        scaled = "measured" if base_n == N_WORKSPACES else f"scaled from {base_n} (the run is linear)"
        print(f"   {base_n} workspace(s): {baseline.describe()}")
        print(f"   {describe_requests(baseline.requests, base_n)}")
        print(
            f"   per workspace: {per_workspace:.2f} s -> {N_WORKSPACES} workspaces: {sequential:.1f} s ({scaled})"
        )

        ratio = sequential / concurrent
        print("\n3. verdict")
        print(f"   speed-up: {ratio:.1f}x faster than one at a time (target >= 20x: {verdict(ratio >= 20)})")
        print(f"   wall time: {concurrent:.2f} s (target < 2 s: {verdict(concurrent < 2)})")
        floor = sum(runs[0].requests.values()) * LATENCY_S / workers
        print(
            f"   floor at max_workers={workers}: {sum(runs[0].requests.values())} requests x {LATENCY_S} s / "
            f"{workers} threads = {floor:.2f} s"
        )

        print("\n4. where the time goes")
        reuse_factory = TimedFactory()
        gateways = gateways_for(hosts, reuse_factory)
        timed_audit(gateways, reuse_factory, workers, now)
        emulator.requests()
        warm = timed_audit(gateways, reuse_factory, workers, now)
        warm.requests = emulator.requests()
        print(f"   clients reused (the long-lived Fleet after its first audit): {warm.describe()}")
        print(f"      {describe_requests(warm.requests, N_WORKSPACES)}")
        local = in_process_audit(workers, now)
        print(f"   emulator in this process (shares the GIL, as in the tests): {local.describe()}")
        if args.explore:
            built, prebuilt = prebuilt_audit(hosts, workers, now)
            emulator.requests()
            print(
                f"   clients built first, in parallel, outside the pool: {built:.2f} s + audit "
                f"{prebuilt.wall:.2f} s = {built + prebuilt.wall:.2f} s"
            )
            for sweep in (32, 128, 256, 400):
                run = cold_audit(hosts, sweep, now, emulator)
                print(f"   max_workers={sweep:<3}: {run.describe()}")

    print(f"\n5. classification of {CLASSIFY_TOKENS:,} tokens (bench/classify.py's tokens, fresh process)")
    c = in_child(_classification_child)
    rate = c["n"] / c["best"]
    print(
        f"   {c['best']:.3f} s best of 3 (median {c['median']:.3f} s) -> {rate:,.0f} tokens/s "
        f"(target >= 200,000: {verdict(rate >= 200_000)})"
    )
    print(f"   peak traced memory (tokens + assessments + principals): {c['traced_peak_mib']:.1f} MiB")
    print(
        f"   RSS high-water mark: {c['rss_peak_mib']:.1f} MiB "
        f"(interpreter and imports before the tokens: {c['rss_base_mib']:.1f} MiB)"
    )

    if not args.skip_memory:
        total = N_WORKSPACES * MEMORY_TOKENS_PER_WORKSPACE
        print(
            f"\n6. a whole audit of {total:,} tokens ({N_WORKSPACES} x {MEMORY_TOKENS_PER_WORKSPACE:,}, "
            "no latency, fresh process, real SDK)"
        )
        with EmulatorProcess(N_WORKSPACES, MEMORY_TOKENS_PER_WORKSPACE, 0.0, now) as big:
            m = in_child(_audit_memory_child, big.hosts, now)
        print(
            f"   {m['tokens']:,.0f} tokens audited in {m['wall']:.2f} s ({m['failed']:.0f} failed workspaces)"
        )
        print(
            f"   peak traced memory during the audit: {m['traced_peak_mib']:.1f} MiB "
            f"(report held afterwards: {m['traced_held_mib']:.1f} MiB)"
        )
        print(
            f"   RSS high-water mark: {m['rss_peak_mib']:.1f} MiB "
            f"(interpreter and imports before the audit: {m['rss_base_mib']:.1f} MiB)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
