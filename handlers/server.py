"""HTTP serving: Bolt behind waitress (production WSGI), with /healthz, /readyz and /metrics."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.wasyncore import close_all

from bot.flows.health import store_ready
from handlers.context import SlackContext

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


ReadinessCheck = Callable[[], tuple[bool, str]]


class InFlight:
    """Slack requests being handled right now, and a switch that refuses new ones (graceful shutdown)."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> InFlight:
        with self._idle:
            self._count += 1
        return self

    def __exit__(self, *_: object) -> None:
        with self._idle:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled; False when `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


def wsgi_app(
    app: App | None,
    ctx: SlackContext,
    *,
    also_ready: ReadinessCheck | None = None,
    in_flight: InFlight | None = None,
) -> WsgiApp:
    """One WSGI callable: Slack events (when `app` is given) and the health and metrics endpoints.

    Once ``in_flight.draining`` is set, ``/readyz`` answers 503 and new Slack requests are refused with
    503 (Slack retries events elsewhere); requests already being handled finish.
    """
    in_flight = in_flight or InFlight()
    slack = SlackRequestHandler(app, path="/slack/events") if app is not None else None
    secret = ctx.services.settings.slack_signing_secret
    verifier = SignatureVerifier(secret.get_secret_value()) if secret is not None else None

    def plain(
        start_response: StartResponse, status: str, body: bytes, ctype: str = "text/plain"
    ) -> list[bytes]:
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def slack_request(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        assert slack is not None
        body = _read_body(environ)
        try:
            return slack(environ, start_response)
        except Exception:
            # Bolt parses the body before it checks the signature; unparseable input ends here.
            signed = verifier is not None and verifier.is_valid(
                body,
                environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
                environ.get("HTTP_X_SLACK_SIGNATURE", ""),
            )
            log.warning("malformed Slack request (%s signature)", "valid" if signed else "invalid")
            if signed:
                return plain(start_response, "200 OK", b"")
            return plain(start_response, "401 Unauthorized", b"invalid request\n")

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz":
            return plain(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            if in_flight.draining.is_set():
                return plain(start_response, "503 Service Unavailable", b"shutting down\n")
            ok, detail = store_ready(ctx.services.redis)
            if ok and also_ready is not None:
                ok, detail = also_ready()
            return plain(
                start_response, "200 OK" if ok else "503 Service Unavailable", detail.encode() + b"\n"
            )
        if path == "/metrics":
            return plain(start_response, "200 OK", ctx.metrics.render(), "text/plain; version=0.0.4")
        if path == "/slack/events" and method == "POST" and slack is not None:
            # Counted before the check, so a drain that saw no request in flight refuses this one.
            with in_flight:
                if in_flight.draining.is_set():
                    return plain(start_response, "503 Service Unavailable", b"shutting down\n")
                return slack_request(environ, start_response)
        return plain(start_response, "404 Not Found", b"not found\n")

    return application


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back for the next reader."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


def make_server(application: WsgiApp, host: str, port: int, threads: int = 16) -> BaseWSGIServer:
    """A waitress server bound now (port 0 picks a free one); call `.run()` to serve."""
    server = waitress.create_server(application, host=host, port=port, threads=threads, ident="patbot")
    assert not isinstance(server, MultiSocketServer)
    return server


def serve_in_thread(server: BaseWSGIServer) -> threading.Thread:
    """Run a server on a daemon thread (tests, and health endpoints beside Socket Mode)."""
    thread = threading.Thread(target=server.run, name="patbot-http", daemon=True)
    thread.start()
    return thread


def stop_server(server: BaseWSGIServer, thread: threading.Thread, timeout: float = 5.0) -> None:
    """Stop a server started with `serve_in_thread`: everything is closed inside its own loop thread,
    so the loop never polls a descriptor closed under it."""

    def close_everything() -> None:
        close_all(server._map)  # the listener, keep-alive connections and the trigger: the loop ends

    try:
        if thread.is_alive():
            server.trigger.pull_trigger(close_everything)
            thread.join(timeout)
    except OSError:  # the loop already closed its trigger (it is stopping on its own)
        thread.join(timeout)
    if thread.is_alive() or server._map:
        close_everything()
    server.task_dispatcher.shutdown()
