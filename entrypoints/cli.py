"""`patbot …`: the command line. Exit 0 ok, 1 a --fail-on finding, 2 configuration or connection errors."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from bot.errors import GovernanceError
from bot.governance.models import Finding, WorkspaceReport
from entrypoints.weekly import WEEKLY_COMMANDS, add_weekly_commands, run_weekly_command

if TYPE_CHECKING:
    from entrypoints.bootstrap import Application

# Modules are imported by the command that needs them: `patbot --help` and a configuration error answer
# without loading databricks-sdk, Redis, Bolt or the emulators.

log = logging.getLogger("patbot")

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

Finish = Callable[[int], NoReturn]
"""Ends the process with an exit code (`patbot audit` run as the console script)."""


def _findings(text: str) -> list[Finding]:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    valid = {f.value: f for f in Finding}
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown finding {', '.join(bad) or repr(text)}; choose from {', '.join(valid)}"
        )
    return [valid[n] for n in names]


def build_parser() -> argparse.ArgumentParser:
    """The `patbot` argument parser."""
    parser = argparse.ArgumentParser(prog="patbot", description="Govern Databricks personal access tokens.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    audit = sub.add_parser("audit", help="audit every PAT of the fleet, without Slack")
    audit.add_argument("--format", choices=("table", "json", "csv"), default="table")
    audit.add_argument(
        "--workspace",
        action="append",
        default=[],
        metavar="HOST",
        help="only this workspace (host, ID or name); repeatable",
    )
    audit.add_argument("--owner", metavar="EMAIL", help="only tokens owned by this user or principal")
    audit.add_argument(
        "--fail-on",
        type=_findings,
        default=[],
        metavar="FINDING,…",
        help="exit 1 when any token has one of these findings",
    )

    log_cmd = sub.add_parser("log", help="print the audit log of requests and decisions")
    log_cmd.add_argument("--format", choices=("table", "json"), default="table")
    log_cmd.add_argument("--limit", type=int, default=None, metavar="N", help="only the latest N entries")
    log_cmd.add_argument(
        "--in-doubt",
        action="store_true",
        help="only requests whose outcome is unknown (interrupted by a crash): what was and was not done",
    )

    serve = sub.add_parser("serve", help="run the Slack app (HTTP on $PORT, or Socket Mode)")
    serve.add_argument("--socket", action="store_true", help="use Socket Mode (needs SLACK_APP_TOKEN)")

    add_weekly_commands(sub)

    sub.add_parser("demo", help="run patbot on embedded defaults against an emulated fleet")
    return parser


class _ArgumentParserError(Exception):
    pass


def allow_many_connections(wanted: int = 65536) -> None:
    """Raise the soft limit on open files towards the hard one (never lower it). A fleet audit keeps up to 16
    connections to each workspace: thousands of sockets at 1,000 workspaces, past the 1,024 files a shell
    often allows, which would fail workspaces with "too many open files"."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(
    argv: Sequence[str] | None = None,
    parts: Application | None = None,
    out: TextIO | None = None,
    finish: Finish | None = None,
) -> int:
    """Entry point of the `patbot` console script; `parts` replaces the composition root (tests). `finish`
    ends the process once an audit's report is written (the console script's `_exit_at_once`)."""
    logging.basicConfig(
        level=os.environ.get("PATBOT_LOG_LEVEL", "WARNING").upper(),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its one-line usage error
        return EXIT_ERROR if exc.code not in (0, None) else EXIT_OK
    allow_many_connections()
    try:
        if args.command == "demo":
            from entrypoints.demo import run_demo

            return int(run_demo(sys.stdout))
        parts = parts or _application()
        if args.command == "audit":
            parts.settings.require_databricks()  # before loading databricks-sdk: a config error answers at once
            return run_audit(parts, args, out or sys.stdout, sys.stderr, finish)
        if args.command in {"serve", "log"} and parts.embedded_store:
            log.warning(
                "REDIS_URL is not set: using the embedded in-memory store; pending approvals and the "
                "audit log do not survive a restart"
            )
        if args.command in WEEKLY_COMMANDS:
            return run_weekly_command(parts, args, out or sys.stdout)
        if args.command == "log":
            return run_log(parts, args, out or sys.stdout)
        if args.command == "serve":
            from bot.logs import configure_logging
            from entrypoints.serve import serve

            configure_logging(os.environ.get("PATBOT_LOG_LEVEL", "INFO"))
            return serve(parts, socket=args.socket)
    except GovernanceError as exc:
        print(f"patbot: {exc.user_message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.debug("unexpected failure", exc_info=True)
        print(
            f"patbot: unexpected error ({type(exc).__name__}); rerun with PATBOT_LOG_LEVEL=DEBUG",
            file=sys.stderr,
        )
        return EXIT_ERROR
    parser.print_usage(sys.stderr)
    return EXIT_ERROR


def _application() -> Application:
    """The composition root on the settings of the environment, `.env` and the secrets directory."""
    from bot.settings import load_settings
    from entrypoints.bootstrap import Application

    return Application(load_settings(os.environ.get("PATBOT_SECRETS_DIR", "/run/secrets")))


def run_audit(
    parts: Application, args: argparse.Namespace, out: TextIO, err: TextIO, finish: Finish | None = None
) -> int:
    """`patbot audit`: print the report as workspaces are read; exit 2 if one failed, 1 on --fail-on.
    With `finish`, the exit code goes to it once the report is written instead of being returned."""
    with _without_cycle_collection():
        return _audit(parts, args, out, err, finish)


@contextlib.contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector: an audit allocates a few records per token and frees them by
    reference counting, and the collector would walk the growing heap again and again for cycles that are
    not there (a tenth of the CPU of a 100,000-token audit)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _audit(
    parts: Application, args: argparse.Namespace, out: TextIO, err: TextIO, finish: Finish | None
) -> int:
    from bot.governance.audit import select_gateways, stream_audit
    from bot.report import CsvReportWriter, JsonReportWriter, ReportWriter, TableReportWriter

    progress = None
    if err.isatty():

        def progress(done: int, total: int, ws: WorkspaceReport) -> None:
            err.write(f"\raudited {done}/{total} workspaces")
            if done == total:
                err.write("\n")
            err.flush()

    now = parts.clock()
    gateways = select_gateways(parts.fleet, args.workspace)
    writer: ReportWriter
    if args.format == "json":
        writer = JsonReportWriter(out, now)
    elif args.format == "csv":
        writer = CsvReportWriter(out)
    else:
        writer = TableReportWriter(out, now)
    fail_on = set(args.fail_on)
    found = False
    failed: list[WorkspaceReport] = []
    for ws in stream_audit(
        gateways,
        parts.policy,
        now=now,
        owner=args.owner,
        max_in_flight=parts.settings.audit_concurrency,
        on_progress=progress,
        oauth=args.format == "json",  # service principals' migration to OAuth: only JSON shows it
    ):
        writer.add(ws)
        if ws.failed:
            failed.append(ws)
        found = found or any(fail_on.intersection(t.findings) for t in ws.tokens)
    writer.close()
    out.flush()
    for ws in failed:
        print(f"patbot: could not read {ws.workspace.label}: {ws.error}", file=err)
    code = EXIT_ERROR if failed else EXIT_FINDINGS if found else EXIT_OK
    if finish is not None:
        finish(code)  # while the reports and the clients are still referenced: none is freed one by one
    return code


def run_log(parts: Application, args: argparse.Namespace, out: TextIO) -> int:
    """`patbot log`: the audit log of requests and decisions, oldest first."""
    if getattr(args, "in_doubt", False):
        from bot.log_in_doubt import run_log_in_doubt

        return run_log_in_doubt(parts.store, args.format, out)
    entries = parts.store.audit.entries(args.limit)
    rows = [
        {
            "time": e.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "event": e.event,
            "request": e.request_id,
            "kind": e.kind,
            "token": e.subject,
            "workspace": e.workspace,
            "requester": e.requester,
            "approver": e.actor or "",
            "outcome": e.outcome or "",
            "detail": e.detail or "",
        }
        for e in entries
    ]
    if args.format == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    header = ("TIME", "EVENT", "REQUEST", "KIND", "TOKEN", "WORKSPACE", "REQUESTER", "APPROVER", "OUTCOME")
    table = [
        tuple(
            str(r[k])
            for k in (
                "time",
                "event",
                "request",
                "kind",
                "token",
                "workspace",
                "requester",
                "approver",
                "outcome",
            )
        )
        for r in rows
    ]
    from bot.report import format_table

    out.write("\n".join(format_table(header, table)) + "\n")
    if not rows:
        out.write("(no requests yet)\n")
    return EXIT_OK


def run() -> NoReturn:
    """The `patbot` console script: `main`, and after `audit`, an exit without the interpreter's teardown."""
    audit = sys.argv[1:2] == ["audit"]
    if audit:
        # Nothing of an audit is freed by the cycle collector before that exit: it would only walk the heap,
        # at start-up and again after the audit (`_without_cycle_collection` keeps it off, as it found it).
        gc.disable()
    sys.exit(main(finish=_exit_at_once if audit else None))


def _exit_at_once(code: int) -> NoReturn:
    """End the process without the interpreter's teardown: once the report is written, freeing its records,
    a connection pool per workspace and the idle threads would only make the user wait for the prompt."""
    with contextlib.suppress(OSError):  # e.g. `patbot audit | head` closed the pipe
        sys.stdout.flush()
        sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
