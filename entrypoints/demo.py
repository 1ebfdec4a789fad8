"""`patbot demo`: the real bot on embedded defaults, against an emulated Databricks fleet and Slack.

One process: the Databricks emulator (three workspaces, sixty tokens, every finding, a ``patbot`` secret
scope), the embedded Redis, the Slack emulator with the demo people and the simulator page, and the real
Bolt app on a free port, verifying the signature of every request the page sends it.

Environment: ``PATBOT_DEMO_PORT`` (the simulator page; default 8080, ``0`` for any free port) and
``PATBOT_DEMO_HOST`` (default ``127.0.0.1``). Policy variables (``PATBOT_STALE_DAYS``…) apply as usual.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TextIO

from bot.databricks import workspace_client_factory
from bot.errors import ConfigError
from bot.fleet import Fleet
from bot.governance.models import Workspace
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator
from bot.sandbox.demo_data import ADMIN_CHANNEL, ADMIN_CHANNEL_NAME, PERSONAS, seed_slack, showcase_fleet
from bot.sandbox.simulator import Person, Simulator, WeeklyJob
from bot.sandbox.slack_emulator import SlackEmulator
from bot.services import Services
from bot.settings import load_settings
from bot.weekly.job import run_weekly
from entrypoints.bootstrap import Application
from entrypoints.serve import start_sweeper
from handlers.context import SlackContext
from handlers.server import make_server, serve_in_thread, stop_server, wsgi_app
from handlers.weekly_blocks import reminder_message, summary_message

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
BOT_TOKEN = "xoxb-patbot-demo"
SECRET_SCOPE = "patbot"


@dataclass
class Demo:
    """A running demo: its parts, their URLs, and `stop()`."""

    url: str
    """The simulator page."""
    bot_url: str
    """The bot's HTTP server (``/slack/events``, ``/healthz``, ``/metrics``)."""
    slack: SlackEmulator
    databricks: DatabricksEmulator
    services: Services
    ctx: SlackContext
    simulator: Simulator
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Stop everything, newest first; safe to call twice."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception:
                log.warning("demo: a part did not stop cleanly", exc_info=True)


def start_demo(*, port: int | None = None, host: str | None = None, now: datetime | None = None) -> Demo:
    """Start every part of the demo; `port` 0 picks a free port for the simulator page."""
    cleanups: list[Callable[[], None]] = []
    try:
        return _start(cleanups, port, host, now or datetime.now(UTC))
    except BaseException:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        raise


def _start(cleanups: list[Callable[[], None]], port: int | None, host: str | None, now: datetime) -> Demo:
    host = host or os.environ.get("PATBOT_DEMO_HOST", "127.0.0.1")
    slack = _slack_emulator(host, port)
    cleanups.append(slack.close)
    approvers = seed_slack(slack)
    slack.start()

    databricks = DatabricksEmulator(showcase_fleet(now)).start()
    cleanups.append(databricks.stop)

    signing_secret = secrets.token_hex(16)
    settings = load_settings(
        None,
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=signing_secret,
        slack_app_token=None,
        slack_api_url=slack.api_url,
        admin_channel=ADMIN_CHANNEL,
        approvers=approvers,
        workspaces=databricks.hosts,
        databricks_token=DEFAULT_ADMIN_TOKEN,
        databricks_account_id=None,
        redis_url=None,
        secret_scope=SECRET_SCOPE,
        scheduler="off",
    )
    fleet = Fleet(
        [
            Workspace(
                host=databricks.host_of(name), workspace_id=databricks.workspace(name).workspace_id, name=name
            )
            for name in databricks.names
        ],
        workspace_client_factory(
            token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=settings.databricks_timeout_seconds
        ),
    )
    parts = Application(settings).replace(fleet=fleet)
    app, ctx = parts.slack_app, parts.slack_context
    cleanups.append(lambda: app.listener_runner.listener_executor.shutdown(wait=True, cancel_futures=True))
    server = make_server(wsgi_app(app, ctx), "127.0.0.1", 0)
    thread = serve_in_thread(server)
    cleanups.append(lambda: stop_server(server, thread))
    bot_url = f"http://127.0.0.1:{server.effective_port}"
    sweeper = start_sweeper(ctx, interval=30.0)
    cleanups.append(sweeper.set)

    job, unavailable = _weekly_job(parts)
    simulator = Simulator(
        slack,
        bot_url=f"{bot_url}/slack/events",
        signing_secret=signing_secret,
        admin_channel=ADMIN_CHANNEL,
        admin_channel_name=ADMIN_CHANNEL_NAME,
        people=[Person(p.user_id, p.role) for p in PERSONAS],
        weekly_job=job,
        weekly_unavailable=unavailable,
    )
    url = simulator.mount()
    cleanups.append(lambda: simulator.wait_weekly(timeout=30))
    if host in ("0.0.0.0", "::"):
        url = url.replace(f"//{host}:", "//localhost:", 1)
    return Demo(url, bot_url, slack, databricks, parts.services, ctx, simulator, cleanups)


def _slack_emulator(host: str, port: int | None) -> SlackEmulator:
    """The Slack emulator on the requested port; the default port falls back to a free one when taken."""
    explicit = port is not None or "PATBOT_DEMO_PORT" in os.environ
    if port is None:
        raw = os.environ.get("PATBOT_DEMO_PORT", str(DEFAULT_PORT))
        try:
            port = int(raw)
        except ValueError:
            raise ConfigError(f"PATBOT_DEMO_PORT: expected a port number, got {raw!r}") from None
        if not 0 <= port <= 65535:
            raise ConfigError(f"PATBOT_DEMO_PORT: expected a port number, got {raw!r}")
    try:
        return SlackEmulator(bot_token=BOT_TOKEN, host=host, port=port, team_name="Example Co")
    except OSError as exc:
        if explicit:
            raise ConfigError(f"PATBOT_DEMO_PORT: cannot listen on {host}:{port} ({exc.strerror})") from None
        return SlackEmulator(bot_token=BOT_TOKEN, host=host, port=0, team_name="Example Co")


def _weekly_job(parts: Application) -> tuple[WeeklyJob | None, str]:
    """The "run the weekly job now" control: the same run as the scheduler's, reported in a few lines."""

    def run() -> str:
        reminders, posted = run_weekly(
            parts.services,
            parts.weekly_chat,
            render_dm=reminder_message,
            render_summary=summary_message,
        )
        lines = [
            f"Week {reminders.week}: {len(reminders.sent)} reminder DM(s) sent, "
            f"{len(reminders.skipped_already_sent)} already sent this week, "
            f"{len(reminders.not_in_slack)} owner(s) not in Slack.",
            f"Summary posted to #{ADMIN_CHANNEL_NAME}."
            if posted.posted
            else "This week's summary was already posted."
            if posted.already_posted
            else "The summary was not posted.",
        ]
        lines += [f"Problem: {p}" for p in posted.problems]
        lines += [f"Reminder to {email} failed: {why}" for email, why in reminders.failed.items()]
        return "\n".join(lines)

    return run, ""


def run_demo(out: TextIO) -> int:
    """`patbot demo`: start everything, print the simulator's URL, run until Ctrl-C or SIGTERM."""
    demo = start_demo()
    stopping = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        workspaces = ", ".join(demo.databricks.names)
        out.write(
            "patbot demo is running: the real bot, an emulated Databricks fleet and an emulated Slack.\n\n"
            f"  Slack simulator   {demo.url}\n"
            f"  bot               {demo.bot_url}/slack/events (health: {demo.bot_url}/healthz)\n"
            f"  workspaces        {workspaces} ({sum(len(demo.databricks.workspace(n).tokens) for n in demo.databricks.names)} tokens)\n"
            "  store             embedded in-memory Redis: requests vanish when the demo stops\n\n"
            "Open the simulator, pick a user and type /pat help. Press Ctrl-C to stop.\n"
        )
        out.flush()
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        out.write("Stopping…\n")
        out.flush()
        demo.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    out.write("patbot demo stopped.\n")
    return 0
