"""`make bench`: run every bench script and print one table of the numbers that matter, with targets.

Each script prints its own detailed report too (kept in bench/out/ after a run). The numbers come from
this machine at this moment; see bench/README.md for what each means.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


@dataclass(frozen=True)
class Metric:
    name: str
    script: str
    pattern: str
    unit: str
    target: str


SCRIPTS: dict[str, list[str]] = {
    "ack_latency": ["bench/ack_latency.py", "--rounds", "2", "--databricks-latency", "0.3"],
    "audit_fleet": ["bench/audit_fleet.py"],
    "classify": ["bench/classify.py"],
    "reminders": ["-m", "bench.reminders"],
    "sustained": ["bench/sustained.py"],
}

METRICS = [
    Metric("ack p50, 50 concurrent /pat audit", "ack_latency", r"all \d+ acks: p50\s+([\d.]+) ms", "ms", "-"),
    Metric(
        "ack p99, 50 concurrent /pat audit",
        "ack_latency",
        r"all \d+ acks: p50\s+[\d.]+ ms\s+p99\s+([\d.]+) ms",
        "ms",
        "< 3000 (Slack's limit)",
    ),
    Metric(
        "A 100x50 @300ms: patbot audit, whole process",
        "audit_fleet",
        r"A: patbot whole process: ([\d.]+) s",
        "s",
        "< ~3",
    ),
    Metric(
        "A: faster than a pool doing the same reads",
        "audit_fleet",
        r"A: patbot vs pool doing the same reads: ([\d.]+)x",
        "x",
        ">= 4",
    ),
    Metric(
        "A: faster than a plain serial loop",
        "audit_fleet",
        r"A: patbot vs serial loop: ([\d.]+)x",
        "x",
        ">= 60",
    ),
    Metric(
        "B 1,000x20 @100ms: faster than the pool (same reads)",
        "audit_fleet",
        r"B: patbot vs pool doing the same reads: ([\d.]+)x",
        "x",
        ">= 2",
    ),
    Metric("B: patbot audit CPU", "audit_fleet", r"B: patbot CPU: ([\d.]+) s", "s", "<= 4.95 (25% of 19.8)"),
    Metric(
        "C 1x100,000 tokens: patbot / bare list",
        "audit_fleet",
        r"C: patbot / bare list: ([\d.]+)x",
        "x",
        "<= 1.5",
    ),
    Metric("C: patbot peak RSS", "audit_fleet", r"C: patbot peak RSS: ([\d.]+) MiB", "MiB", "<= 200"),
    Metric(
        "classification rate", "classify", r"-> ([\d,]+) tokens/s", "tokens/s", ">= 200,000 (idle machine)"
    ),
    Metric("peak memory, 100,000 tokens classified", "classify", r"peak memory .*: ([\d.]+) MiB", "MiB", "-"),
    Metric("reminder campaign / rate-limit bound", "reminders", r"ratio ([\d.]+)", "", "<= 1.2"),
    Metric("Slack API calls per owner", "reminders", r"([\d.]+) per owner", "", "<= 1.1"),
    Metric(
        "sustained 5,000 mixed requests: ack errors", "sustained", r"ack errors: \d+ \(([\d.]+)%\)", "%", "0"
    ),
    Metric("sustained: ack p99", "sustained", r"ack latency: p50 [\d.]+ ms, p99 ([\d.]+) ms", "ms", "< 3000"),
    Metric("sustained: RSS growth", "sustained", r"RSS: .*\(([+-]?\d+) MiB\)", "MiB", "-"),
]


def main() -> int:
    OUT.mkdir(exist_ok=True)
    outputs: dict[str, str] = {}
    for name, args in SCRIPTS.items():
        started = time.monotonic()
        print(f"running {name} …", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        outputs[name] = done.stdout
        (OUT / f"{name}.txt").write_text(done.stdout + done.stderr)
        print(f"  {name}: exit {done.returncode} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    width = max(len(m.name) for m in METRICS)
    print(f"{'metric':<{width}}  {'value':>12}  {'unit':<9}  target")
    for metric in METRICS:
        found = re.search(metric.pattern, outputs.get(metric.script, ""))
        value = found.group(1) if found else "n/a"
        print(f"{metric.name:<{width}}  {value:>12}  {metric.unit:<9}  {metric.target}")
    print(f"\nfull reports: {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
