"""Fleet audit as users run it: whole `patbot audit` processes against plain databricks-sdk scripts.

Every number is a whole process, start-up included, measured in this run (nothing extrapolated): wall
time, CPU (user + system) and peak RSS of each child from `os.wait4`. Medians of `--runs` runs (3).
The emulated Databricks runs in a process of its own, answering every call after the given latency.

Scenarios (targets from issue 16):
  A. 100 workspaces x 50 tokens, 300 ms per call: patbot audit >= 4x faster than a 32-thread pool doing
     the same four reads, >= 60x faster than a plain serial loop, whole process under ~3 s;
  B. 1,000 workspaces x 20 tokens, 100 ms per call: >= 2x faster than the pool doing the same reads, CPU
     <= 25% of the 19.8 s measured before (issue 16);
  C. 1 workspace x 100,000 tokens, no latency: <= 1.5x a bare `token_management.list()`, peak RSS <= 200 MiB.

`patbot audit --format json` also reads every active service principal's OAuth secrets; the CSV report,
timed too in B and C, does not: the difference is what those reads cost.

The baselines are `bench/sdk_loop.py` (databricks-sdk directly) and `bench/floor_client.py` (patbot's reads
by a bare asyncio client: the floor this machine and emulator allow). `--compare-src DIR` also times the
`patbot audit` of another checkout (e.g. the code before issue 16) the same way.
Run from the repository root: `.venv/bin/python bench/audit_fleet.py` (about ten minutes: the serial
loop of scenario A alone takes about a minute and a half per run). `--quick` skips the serial loop.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[1]
SDK_LOOP = ROOT / "bench" / "sdk_loop.py"
FLOOR = ROOT / "bench" / "floor_client.py"
SPAWN = mp.get_context("spawn")


@dataclass(frozen=True)
class Scenario:
    key: str
    workspaces: int
    tokens: int
    latency: float

    def describe(self) -> str:
        return (
            f"{self.workspaces:,} workspace(s) x {self.tokens:,} tokens, "
            f"{self.latency * 1000:.0f} ms per call"
        )


SCENARIOS = {
    "A": Scenario("A", 100, 50, 0.3),
    "B": Scenario("B", 1000, 20, 0.1),
    "C": Scenario("C", 1, 100_000, 0.0),
}


# ---------------------------------------------------------------------------------- emulator process


def _serve(conn: Connection, scenario: Scenario) -> None:
    """Child process: serve a seeded fleet until told to stop."""
    from bot.sandbox.databricks_emulator import DatabricksEmulator, seed_fleet

    fleet = seed_fleet(scenario.workspaces, scenario.tokens, now=datetime.now(UTC))
    with DatabricksEmulator(fleet, poll_interval=1.0, keep_alive=True) as emulator:
        emulator.set_latency(None, scenario.latency)
        conn.send(emulator.hosts)
        while conn.poll(3600):
            if conn.recv() == "stop":
                break


class EmulatorProcess:
    """The emulated fleet in a process of its own (started on enter, stopped on exit)."""

    def __init__(self, scenario: Scenario) -> None:
        self._conn, child = SPAWN.Pipe()
        self._process = SPAWN.Process(target=_serve, args=(child, scenario), daemon=True)
        self.hosts: list[str] = []

    def __enter__(self) -> EmulatorProcess:
        self._process.start()
        if not self._conn.poll(600):
            raise TimeoutError("the emulator did not start")
        self.hosts = list(self._conn.recv())
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)


# ------------------------------------------------------------------------------------------ processes


@dataclass(frozen=True)
class Measured:
    wall: float
    cpu: float
    rss_mib: float
    returncode: int
    token_records: int  # `"token_id":` keys in its output (JSON of patbot audit)


def measure(argv: Sequence[str], env: dict[str, str], cwd: str) -> Measured:
    """Run one process to its end: wall time, CPU and peak RSS of that process alone (`wait4`).

    A child's `ru_maxrss` starts from this process's RSS when it forks, so this process keeps no output
    in memory: it counts token records in chunks and drops them.
    """
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        records, tail = 0, b""
        while chunk := out.read(1 << 20):
            records += (tail + chunk).count(b'"token_id":')
            tail = chunk[-16:]
            records -= tail.count(b'"token_id":')
        records += tail.count(b'"token_id":')
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, records)


@dataclass
class Series:
    name: str
    runs: list[Measured]

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def rss(self) -> float:
        """The highest peak RSS of the runs (not the median: a ceiling is what a user provisions for)."""
        return max(r.rss_mib for r in self.runs)

    def line(self) -> str:
        walls = ", ".join(f"{r.wall:.2f}" for r in self.runs)
        rss = ", ".join(f"{r.rss_mib:.0f}" for r in self.runs)
        codes = sorted({r.returncode for r in self.runs})
        return (
            f"   {self.name:<34} median {self.wall:7.2f} s  cpu {self.cpu:6.2f} s  peak RSS {self.rss:6.0f} MiB"
            f"   (runs: {walls} s; {rss} MiB; exit {','.join(map(str, codes))})"
        )


def child_env(hosts: list[str], src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PATBOT_", "SLACK_"))}
    env.update(
        PATBOT_WORKSPACES=",".join(hosts),
        DATABRICKS_TOKEN=DEFAULT_ADMIN_TOKEN,
        PYTHONPATH=str(src),
        # The emulator answers 1,000 workspaces from one Python process on the same two cores: when other
        # jobs load the machine it can fall seconds behind, and the default 10 s retry budget would then fail
        # workspaces (and the run) instead of timing the audit. The SDK scripts keep the SDK's defaults.
        PATBOT_DATABRICKS_TIMEOUT_SECONDS="60",
    )
    env.pop("REDIS_URL", None)
    return env


def series(name: str, argv: list[str], env: dict[str, str], runs: int, check: Any = None) -> Series:
    out = Series(name, [])
    with tempfile.TemporaryDirectory() as cwd:  # no .env of the repository
        for _ in range(runs):
            m = measure(argv, env, cwd)
            if check is not None:
                check(m)
            out.runs.append(m)
    print(out.line(), flush=True)
    return out


def patbot_audit(src: Path, fmt: str = "json") -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", "audit", "--format", fmt]


def expect_tokens(n: int) -> Any:
    def check(m: Measured) -> None:
        if m.token_records != n or m.returncode != 0:
            raise SystemExit(f"patbot audit wrote {m.token_records} tokens (exit {m.returncode}), not {n}")

    return check


def exit_ok(m: Measured) -> None:
    if m.returncode != 0:
        raise SystemExit(f"patbot audit exited {m.returncode}")


def ratio(slow: Series, fast: Series) -> float:
    return slow.wall / fast.wall


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


# ------------------------------------------------------------------------------------------ scenarios


def run_scenario(s: Scenario, args: argparse.Namespace) -> None:
    print(f"\n{s.key}. {s.describe()}", flush=True)
    with EmulatorProcess(s) as emulator:
        env = child_env(emulator.hosts, ROOT)
        total = s.workspaces * s.tokens
        sdk = [sys.executable, str(SDK_LOOP)]
        patbot = series(
            "patbot audit --format json", patbot_audit(ROOT), env, args.runs, expect_tokens(total)
        )
        # `--format json` also reads every active service principal's OAuth secrets (one request each, for
        # the migration to OAuth); the CSV report does not: the difference is what those reads cost.
        csv_only = series(
            "patbot audit --format csv (no OAuth reads)", patbot_audit(ROOT, "csv"), env, args.runs, exit_ok
        )
        before = None
        if args.compare_src:
            old_env = child_env(emulator.hosts, Path(args.compare_src))
            before = series(
                f"patbot audit ({args.compare_src})", patbot_audit(Path(args.compare_src)), old_env, args.runs
            )
        # The same reads by the leanest client Python allows (no SDK, no settings, no report): what is left
        # once patbot's own work is gone, i.e. the machine and the emulator.
        floor = series(
            "floor: bare asyncio, same reads", [sys.executable, str(FLOOR)], env, args.runs, exit_ok
        )
        print(
            f"   {s.key}: patbot above the floor: {patbot.wall - floor.wall:+.2f} s "
            f"(start-up alone, `patbot --help`: see bench/README.md)"
        )
        if s.key == "C":
            bare = series("bare token_management.list()", [*sdk, "list"], env, args.runs)
            print(f"   {s.key}: floor / bare list: {floor.wall / bare.wall:.2f}x")
            r = patbot.wall / bare.wall
            print(f"   {s.key}: patbot / bare list: {r:.2f}x (target <= 1.5x: {verdict(r <= 1.5)})")
            r_csv = csv_only.wall / bare.wall
            print(
                f"   {s.key}: patbot --format csv (no OAuth reads) / bare list: {r_csv:.2f}x "
                f"(target <= 1.5x: {verdict(r_csv <= 1.5)})"
            )
            print(
                f"   {s.key}: patbot peak RSS: {patbot.rss:.0f} MiB (target <= 200 MiB: {verdict(patbot.rss <= 200)})"
            )
            return
        pool = series("SDK, 32-thread pool, tokens only", [*sdk, "pool"], env, args.runs)
        reads = series("SDK, 32-thread pool, the 4 reads", [*sdk, "reads"], env, args.runs)
        r_reads, r_pool = ratio(reads, patbot), ratio(pool, patbot)
        if s.key == "A":
            print(
                f"   {s.key}: patbot vs pool doing the same reads: {r_reads:.1f}x faster (target >= 4x: {verdict(r_reads >= 4)})"
            )
            print(f"   {s.key}: patbot vs pool listing tokens only: {r_pool:.1f}x faster")
            if not args.quick:
                serial = series("SDK, plain serial loop, tokens", [*sdk, "serial"], env, args.serial_runs)
                r_serial = ratio(serial, patbot)
                print(
                    f"   {s.key}: patbot vs serial loop: {r_serial:.1f}x faster (target >= 60x: {verdict(r_serial >= 60)})"
                )
                print(f"   {s.key}: the floor vs serial loop: {ratio(serial, floor):.1f}x faster")
            print(
                f"   {s.key}: patbot whole process: {patbot.wall:.2f} s (target < ~3 s: {verdict(patbot.wall < 3.0)})"
            )
        else:
            print(
                f"   {s.key}: patbot vs pool doing the same reads: {r_reads:.1f}x faster (target >= 2x: {verdict(r_reads >= 2)})"
            )
            print(f"   {s.key}: patbot vs pool listing tokens only: {r_pool:.1f}x faster")
            share = patbot.cpu / 19.8
            print(
                f"   {s.key}: patbot --format csv (no OAuth reads) CPU: {csv_only.cpu:.2f} s = {csv_only.cpu / 19.8:.0%} of 19.8 s"
            )
            print(
                f"   {s.key}: patbot CPU: {patbot.cpu:.2f} s = {share:.0%} of the 19.8 s before issue 16 "
                f"(target <= 25%: {verdict(share <= 0.25)})"
            )
            if before is not None:
                print(
                    f"   {s.key}: patbot CPU before (measured here): {before.cpu:.2f} s -> now {patbot.cpu / before.cpu:.0%}"
                )


def precompile(src: Path) -> None:
    """Byte-compile a checkout's code first: with `PYTHONDONTWRITEBYTECODE` set (or a fresh checkout in a
    read-only place) every run of it would compile its modules again, a cost no installed patbot pays."""
    dirs = [str(src / d) for d in ("bot", "entrypoints", "handlers") if (src / d).is_dir()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *dirs], check=False, stdout=subprocess.DEVNULL)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per series (median; default 3)")
    parser.add_argument("--serial-runs", type=int, default=3, help="runs of the serial loop (default 3)")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: all")
    parser.add_argument("--quick", action="store_true", help="skip the serial loop of scenario A")
    parser.add_argument("--compare-src", metavar="DIR", help="also time `patbot audit` from this checkout")
    args = parser.parse_args(argv)
    for src in filter(None, (ROOT, args.compare_src)):
        precompile(Path(src))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"whole processes, medians of {args.runs} runs; {os.cpu_count()} CPU(s) (nproc), load average {load}; "
        f"emulator in its own process; {sys.version.split()[0]}"
    )
    for key in args.scenario or sorted(SCENARIOS):
        run_scenario(SCENARIOS[key], args)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
