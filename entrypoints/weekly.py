"""`patbot remind` and `patbot summary`: the weekly job from the command line (CronJobs, by hand)."""

from __future__ import annotations

import argparse
import html
import re
import sys
from typing import TYPE_CHECKING, Any, TextIO

from bot.errors import ConfigError, GovernanceError

if TYPE_CHECKING:  # the weekly job loads Redis, Slack and databricks-sdk: not for `patbot --help`
    from bot.weekly import ReminderResult, SummaryResult
    from entrypoints.bootstrap import Application

EXIT_OK, EXIT_ERROR = 0, 2
_SLACK_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
WEEKLY_COMMANDS = frozenset({"remind", "summary"})


def add_weekly_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `remind [--dry-run]` and `summary [--dry-run] [--force]` on the `patbot` parser."""
    remind_cmd = subparsers.add_parser(
        "remind", help="send this week's reminder DMs now (idempotent per ISO week)"
    )
    remind_cmd.add_argument(
        "--dry-run", action="store_true", help="print who would get which DM; send nothing, mark nothing"
    )
    summary_cmd = subparsers.add_parser(
        "summary", help="post the admin-channel summary now (idempotent per ISO week)"
    )
    summary_cmd.add_argument("--dry-run", action="store_true", help="print the summary instead of posting it")
    summary_cmd.add_argument(
        "--force", action="store_true", help="post it even if this week's summary was already posted"
    )


def run_weekly_command(
    parts: Application, args: argparse.Namespace, out: TextIO, err: TextIO | None = None
) -> int:
    """Run `patbot remind` or `patbot summary`: 0 when complete, 2 on configuration or connection errors."""
    import redis
    from slack_sdk.errors import SlackApiError

    from bot.weekly import RemindOptions, SummaryOptions, remind, summary
    from handlers.weekly_blocks import reminder_message, summary_message

    err = err or sys.stderr
    try:
        svc = parts.services
        slack = parts.weekly_chat
        if args.command == "remind":
            if svc.embedded_store and not args.dry_run:
                # Each `patbot remind` is a new process: an in-memory store forgets who was DMed.
                raise ConfigError(
                    "REDIS_URL is required for patbot remind: without a shared Redis the at-most-one-DM-a-week "
                    "guarantee cannot hold across runs (--dry-run works without it)"
                )
            result = remind(svc, slack, reminder_message, RemindOptions(dry_run=args.dry_run))
            return _report_reminders(result, out, err)
        if args.command == "summary":
            force = bool(getattr(args, "force", False))
            if svc.embedded_store and not (args.dry_run or force):
                raise ConfigError(
                    "REDIS_URL is required for patbot summary: without a shared Redis it cannot tell whether "
                    "this week's summary was already posted (--dry-run works without it; --force posts anyway)"
                )
            posted = summary(svc, slack, summary_message, SummaryOptions(dry_run=args.dry_run, force=force))
            return _report_summary(posted, out, err)
    except GovernanceError as exc:
        print(f"patbot: {exc.user_message}", file=err)
        return EXIT_ERROR
    except redis.RedisError as exc:
        print(f"patbot: cannot reach Redis at REDIS_URL ({type(exc).__name__})", file=err)
        return EXIT_ERROR
    except SlackApiError as exc:
        print(f"patbot: Slack answered {exc.response.get('error') or 'an error'}", file=err)
        return EXIT_ERROR
    print(f"patbot: unknown weekly command {args.command!r}", file=err)
    return EXIT_ERROR


def _report_reminders(result: ReminderResult, out: TextIO, err: TextIO) -> int:
    from bot.weekly import dm_lines

    write = out.write
    if result.dry_run:
        write(f"Week {result.week} (dry run): {result.eligible} owner(s) hold stale or non-expiring tokens\n")
        for reminder in result.planned:
            lines = dm_lines(reminder)
            write("would DM " + "\n".join(lines) + "\n")
    else:
        write(
            f"Week {result.week}: {len(result.sent)} DM(s) sent, {len(result.skipped_already_sent)} "
            f"already sent this week, {len(result.not_in_slack)} owner(s) not in Slack, "
            f"{len(result.failed)} failed, {len(result.in_doubt)} in doubt; "
            f"{result.slack_calls} Slack API call(s)\n"
        )
    if result.dry_run and result.skipped_already_sent:
        write("already sent this week: " + ", ".join(result.skipped_already_sent) + "\n")
    if result.not_in_slack:
        write("not in Slack (listed in the summary): " + ", ".join(result.not_in_slack) + "\n")
    if result.in_doubt:
        write("in doubt, not resent this week: " + ", ".join(result.in_doubt) + "\n")
    if result.in_progress_elsewhere:
        write("still being sent by another run: " + ", ".join(result.in_progress_elsewhere) + "\n")
    if result.service_principal_tokens:
        write(
            f"{len(result.service_principal_tokens)} service-principal token(s) are stale or never "
            "expire (in the summary, not DMed)\n"
        )
    for email, reason in sorted(result.failed.items()):
        print(f"patbot: reminder to {email} failed: {reason}", file=err)
    for label, error in result.unreadable_workspaces.items():
        print(f"patbot: could not read {label}: {error}", file=err)
    out.flush()
    return EXIT_OK if result.complete else EXIT_ERROR


def _report_summary(result: SummaryResult, out: TextIO, err: TextIO) -> int:
    if result.dry_run:
        out.write(f"Summary for {result.week} (dry run), would post to {result.channel or '(no channel)'}:\n")
        out.write(_plain(result.message.blocks) + "\n")
    elif result.already_posted:
        out.write(f"The summary for {result.week} was already posted (--force posts it again).\n")
    else:
        attached = ", ".join(result.attached) or "nothing"
        out.write(f"Summary for {result.week} posted to {result.channel}; attached {attached}.\n")
    if result.chart_note:
        out.write(f"({result.chart_note})\n")
    for problem in result.problems:
        print(f"patbot: {problem}", file=err)
    for label, error in result.summary.failed_workspaces:
        print(f"patbot: could not read {label}: {error}", file=err)
    out.flush()
    return EXIT_ERROR if result.problems or result.summary.failed_workspaces else EXIT_OK


def _plain(blocks: list[dict[str, Any]]) -> str:
    """The text of Block Kit blocks, for a terminal."""
    lines: list[str] = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            lines.append(str(text.get("text", "")))
        for element in block.get("elements") or []:
            if isinstance(element, dict) and "text" in element:
                lines.append(str(element["text"]))
    return html.unescape(_SLACK_DATE.sub(r"\1", "\n".join(lines)))
