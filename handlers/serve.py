"""`patbot serve`: HTTP (waitress) or Socket Mode, health endpoints served in both."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError

from bot.flows.decide import sweep_expired
from bot.scheduler import start_scheduler
from bot.services import Services
from bot.weekly import weekly_job
from bot.weekly_cli import weekly_client
from handlers.app import create_app
from handlers.context import SlackContext
from handlers.errors import user_message
from handlers.server import make_server, serve_in_thread, wsgi_app
from handlers.weekly_blocks import reminder_message, summary_message

log = logging.getLogger(__name__)


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


def serve(services: Services, *, socket: bool = False) -> int:
    """Run the Slack app until interrupted."""
    settings = services.settings
    settings.require_for_serve()
    app, ctx = create_app(settings, services)
    start_sweeper(ctx)
    start_scheduler(
        settings,
        weekly_job(
            services, weekly_client(settings), render_dm=reminder_message, render_summary=summary_message
        ),
    )
    use_socket = socket or settings.slack_app_token is not None
    if use_socket:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        from bot.errors import ConfigError

        if settings.slack_app_token is None:
            raise ConfigError("SLACK_APP_TOKEN is required for --socket (an xapp- app-level token)")
        handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
        health = make_server(
            wsgi_app(None, ctx, also_ready=socket_readiness(handler.client.is_connected)),
            "0.0.0.0",
            settings.port,
        )
        serve_in_thread(health)
        log.info("Socket Mode; health endpoints on port %s", settings.port)
        try:
            handler.connect()  # type: ignore[no-untyped-call]
        except SlackApiError as exc:  # apps.connections.open refused the app-level token
            raise ConfigError(
                f"SLACK_APP_TOKEN: Slack refused it ({exc.response.get('error', 'error')})"
            ) from None
        log.info("Socket Mode connected")
        threading.Event().wait()  # the handler's threads serve; this one waits for a signal
        return 0
    server = make_server(wsgi_app(app, ctx), "0.0.0.0", settings.port)
    log.info("serving Slack events on port %s", settings.port)
    server.run()
    return 0
