"""`patbot serve`: HTTP (waitress) or Socket Mode, health endpoints served in both, graceful on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from types import FrameType

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.approvals import ApprovalRequest, ApprovalStore
from bot.approvals.in_doubt import InDoubt, announce_in_doubt
from bot.flows.decide import sweep_expired
from bot.scheduler import WeeklyScheduler, start_scheduler
from bot.weekly import WeekRuns
from entrypoints.bootstrap import Application
from handlers.approval_blocks import admin_decided_blocks, outcome_text
from handlers.context import SlackContext
from handlers.errors import user_message
from handlers.in_doubt_blocks import in_doubt_blocks, in_doubt_text
from handlers.server import InFlight, make_server, serve_in_thread, stop_server, wsgi_app

log = logging.getLogger(__name__)

# Kubernetes sends SIGKILL terminationGracePeriodSeconds (30 in the chart) after SIGTERM.
SHUTDOWN_GRACE_SECONDS = 25.0


def start_sweeper(ctx: SlackContext, interval: float = 60.0) -> threading.Event:
    """Expire overdue requests and update their admin messages every `interval` seconds."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                sweep_expired(ctx.deps)
            except Exception as exc:  # keep sweeping; the store may be back next time
                log.warning("expiry sweep failed: %s", user_message(exc, ctx.metrics))

    threading.Thread(target=loop, name="patbot-sweeper", daemon=True).start()
    return stop


def socket_readiness(
    is_connected: Callable[[], bool], grace: float = 30.0, clock: Callable[[], float] = time.monotonic
) -> Callable[[], tuple[bool, str]]:
    """Ready while the Socket Mode connection is up, or has been down for less than `grace` seconds
    (slack_sdk reconnects by itself; a connection that stays down takes the pod out of rotation)."""
    last_up = clock()

    def check() -> tuple[bool, str]:
        nonlocal last_up
        now = clock()
        if is_connected():
            last_up = now
            return True, "ok (socket mode connected)"
        if now - last_up < grace:
            return True, "ok (socket mode reconnecting)"
        return False, f"socket mode disconnected for {now - last_up:.0f} s"

    return check


def show_in_doubt_requests(store: ApprovalStore, client: WebClient, ctx: SlackContext) -> int:
    """Update the admin message of every request in doubt to say so; returns how many."""

    def show_in_doubt(item: InDoubt) -> None:
        request = item.request
        if request.admin_channel and request.admin_ts:
            client.chat_update(
                channel=request.admin_channel,
                ts=request.admin_ts,
                blocks=in_doubt_blocks(item),
                text=in_doubt_text(item),
            )

    def show_outcome(request: ApprovalRequest) -> None:
        if request.admin_channel and request.admin_ts:
            client.chat_update(
                channel=request.admin_channel,
                ts=request.admin_ts,
                blocks=admin_decided_blocks(request),
                text=outcome_text(request),
            )

    try:
        shown = announce_in_doubt(store, show_in_doubt, show_outcome)
    except Exception as exc:  # the store is down: serving must still start
        log.warning("could not list requests in doubt: %s", user_message(exc, ctx.metrics))
        return 0
    return len(shown)


class GracefulShutdown:
    """SIGTERM (or SIGINT): readiness fails at once, new Slack work is refused, work in flight finishes
    for up to `grace` seconds, then the process exits."""

    def __init__(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        self.grace = grace
        self.in_flight = InFlight()
        self._signalled = False

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: taking a lock in a signal handler can deadlock the thread it interrupted.
        self._signalled = True

    def wait(self) -> None:
        """Block until a signal arrives, then stop taking new work."""
        while not self._signalled:
            time.sleep(0.1)
        self.in_flight.draining.set()
        log.info("shutting down: no new work; finishing work in flight (up to %.0f s)", self.grace)

    def drain(
        self,
        executor: Executor | None,
        scheduler: WeeklyScheduler | None,
        sweeper: threading.Event,
        before: Callable[[], None] | None = None,
    ) -> bool:
        """Let requests, listeners and decisions in flight finish within the grace period; stop the rest.

        True when everything finished in time.
        """
        deadline = time.monotonic() + self.grace

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        sweeper.set()
        finished = True
        if before is not None:
            finished &= _within(left(), before)
        finished &= self.in_flight.wait_idle(left())
        if executor is not None:  # Bolt's lazy listeners: the decisions and their Databricks calls
            finished &= _within(left(), lambda: executor.shutdown(wait=True))
        if scheduler is not None:
            finished &= scheduler.stop(left())
        return finished


def _within(timeout: float, step: Callable[[], None]) -> bool:
    """Run `step` on a daemon thread; False if it has not returned after `timeout` seconds."""
    thread = threading.Thread(target=step, name="patbot-shutdown", daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def _listener_executor(app: App) -> Executor | None:
    executor = getattr(app.listener_runner, "listener_executor", None)
    return executor if isinstance(executor, Executor) else None


def _exit(finished: bool) -> int:
    if finished:
        log.info("stopped cleanly")
        return 0
    # Worker threads still running would hold the interpreter open past the grace period.
    log.warning("work still running after %.0f s: stopping anyway", SHUTDOWN_GRACE_SECONDS)
    logging.shutdown()
    os._exit(1)


def serve(parts: Application, *, socket: bool = False) -> int:
    """Run the Slack app until SIGTERM or SIGINT, then shut down gracefully (exit 0)."""
    settings = parts.settings
    settings.require_for_serve()
    shutdown = GracefulShutdown()
    shutdown.install()
    app, ctx = parts.slack_app, parts.slack_context
    sweeper = start_sweeper(ctx)
    show_in_doubt_requests(parts.store, app.client, ctx)
    scheduler = start_scheduler(settings, parts.weekly_job, WeekRuns(parts.redis))
    executor = _listener_executor(app)
    use_socket = socket or settings.slack_app_token is not None
    if use_socket:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        from bot.errors import ConfigError

        if settings.slack_app_token is None:
            raise ConfigError("SLACK_APP_TOKEN is required for --socket (an xapp- app-level token)")
        handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
        health = make_server(
            wsgi_app(
                None,
                ctx,
                also_ready=socket_readiness(handler.client.is_connected),
                in_flight=shutdown.in_flight,
            ),
            "0.0.0.0",
            settings.port,
        )
        health_thread = serve_in_thread(health)
        log.info("Socket Mode; health endpoints on port %s", settings.port)
        try:
            handler.connect()  # type: ignore[no-untyped-call]
        except SlackApiError as exc:  # apps.connections.open refused the app-level token
            raise ConfigError(
                f"SLACK_APP_TOKEN: Slack refused it ({exc.response.get('error', 'error')})"
            ) from None
        log.info("Socket Mode connected")
        shutdown.wait()
        # Closing the connection first: Slack sends no new work here, and the acks being processed
        # finish before the listeners they started are waited for.
        finished = shutdown.drain(executor, scheduler, sweeper, before=handler.close)
        stop_server(health, health_thread)
        return _exit(finished)
    server = make_server(wsgi_app(app, ctx, in_flight=shutdown.in_flight), "0.0.0.0", settings.port)
    thread = serve_in_thread(server)
    log.info("serving Slack events on port %s", settings.port)
    shutdown.wait()
    finished = shutdown.drain(executor, scheduler, sweeper)
    stop_server(server, thread)
    return _exit(finished)
