"""``SlackEmulator``: the API areas joined, its lifecycle, and the dispatch of a Web API call."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.sandbox.slack_emulator.args import json_reply
from bot.sandbox.slack_emulator.chat import ChatMixin
from bot.sandbox.slack_emulator.conversations import ConversationsMixin
from bot.sandbox.slack_emulator.files import FilesMixin
from bot.sandbox.slack_emulator.recording import RecordingMixin
from bot.sandbox.slack_emulator.records import Args, MethodHandler, SlackError, User, WebResponse, WebRoute
from bot.sandbox.slack_emulator.response_url import ResponseUrlMixin
from bot.sandbox.slack_emulator.routing import Handler, Server
from bot.sandbox.slack_emulator.socket_api import SocketMixin
from bot.sandbox.slack_emulator.users import UsersMixin
from bot.sandbox.slack_emulator.views import ViewsMixin
from bot.sandbox.socket_mode import SocketModeServer

log = logging.getLogger("bot.sandbox.slack_emulator")

_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # called with the app-level token


class SlackEmulator(
    UsersMixin,
    ConversationsMixin,
    ChatMixin,
    ViewsMixin,
    FilesMixin,
    ResponseUrlMixin,
    SocketMixin,
    RecordingMixin,
):
    """A Slack Web API emulator serving on ``127.0.0.1`` (port 0 by default) in daemon threads.

    Use as a context manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        team_id: str = "T1",
        team_name: str = "Emulated Workspace",
        team_domain: str = "emulated",
        bot_user_id: str = "UPATBOT01",
        bot_id: str = "BPATBOT01",
        bot_name: str = "patbot",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        time_scale: float = 1.0,
        latency: float = 0.0,
        strict_channels: bool = False,
        app_token: str | None = None,
        app_id: str = "A1",
    ) -> None:
        super().__init__(
            bot_token=bot_token,
            team_id=team_id,
            team_name=team_name,
            team_domain=team_domain,
            bot_id=bot_id,
            clock=clock,
            time_scale=time_scale,
            latency=latency,
            strict_channels=strict_channels,
            app_token=app_token,
            app_id=app_id,
        )
        self._init_faults()
        self.bot_user = User(
            id=bot_user_id, name=bot_name, real_name=bot_name, is_bot=True, team_id=team_id, bot_id=bot_id
        )
        self._put_user(self.bot_user)
        self._methods = {
            **self._users_methods(),
            **self._conversations_methods(),
            **self._chat_methods(),
            **self._views_methods(),
            **self._files_methods(),
            **self._socket_methods(),
        }
        handler = type("_BoundHandler", (Handler,), {"emulator": self})
        self._server = Server((host, port), handler)
        self._thread: threading.Thread | None = None
        # Socket Mode's WebSocket endpoint, only with an app token.
        self._socket = SocketModeServer(host, app_id=app_id, clock=self.now) if app_token else None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SlackEmulator:
        """Serve requests in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="slack-emulator", daemon=True
            )
            self._thread.start()
        if self._socket is not None:
            self._socket.start()
        return self

    def close(self) -> None:
        """Stop serving (Socket Mode connections get ``close`` 1001) and release the ports."""
        if self._socket is not None:
            self._socket.close()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)`` (ends with ``/api/``)."""
        return f"{self.base_url}/api/"

    # ----------------------------------------------------------------- extending

    def mount(self, prefix: str, route: WebRoute) -> None:
        """Serve every request whose path is *prefix* or below it (``/simulator``, ``/simulator/…``)
        with *route*. Routes run outside the emulator's lock, so they may call the app under test."""
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError("prefix must start with / and not end with /")
        with self._lock:
            self._mounts[prefix] = route

    def _mounted(self, path: str) -> WebRoute | None:
        with self._lock:
            for prefix in sorted(self._mounts, key=len, reverse=True):
                if path == prefix or path.startswith(prefix + "/"):
                    return self._mounts[prefix]
        return None

    def register_method(self, method: str, handler: MethodHandler) -> None:
        """Serve another Web API method: *handler(args)* returns the response (``ok`` added)
        or raises :class:`SlackError`. It runs under the emulator's lock."""
        with self._lock:
            self._methods[method] = handler

    # ----------------------------------------------------------------- one Web API call

    def _handle_api(self, method: str, args: Args, token: str | None) -> WebResponse:
        self._delay(method)
        with self._lock:
            status, error = 200, None
            headers: tuple[tuple[str, str], ...] = ()
            try:
                handler = self._methods.get(method)
                if handler is None:
                    raise SlackError("unknown_method")
                if not token:
                    raise SlackError("not_authed")
                self._check_token(method, token)
                fault = self._fault(method)
                if fault is not None:
                    status, error, retry_after, exact = fault
                    if retry_after is not None:
                        headers = (("Retry-After", str(retry_after)),)
                        if exact is not None:
                            headers += (("X-Emulator-Retry-After", f"{exact:.3f}"),)
                    raise SlackError(error)
                result = {"ok": True, **handler(args)}
            except SlackError as exc:
                error = exc.error
                result = {"ok": False, "error": exc.error}
            except Exception:
                log.exception("slack emulator: %s failed", method)
                status, error = 500, "internal_error"
                result = {"ok": False, "error": error}
            self._record(method, args, status, error)
            return json_reply(result, status, headers)

    def _check_token(self, method: str, token: str) -> None:
        """App-level methods take only the app token, the others only the bot token."""
        if method in _APP_TOKEN_METHODS:
            if self.app_token is not None and token == self.app_token:
                return
            raise SlackError("not_allowed_token_type" if token == self.bot_token else "invalid_auth")
        if token != self.bot_token:
            wrong_type = self.app_token is not None and token == self.app_token
            raise SlackError("not_allowed_token_type" if wrong_type else "invalid_auth")
