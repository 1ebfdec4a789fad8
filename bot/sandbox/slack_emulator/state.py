"""The emulator's shared state, its clock, and the lookups every API area uses.

Each API area (``users``, ``conversations``, ``chat``, ``views``, ``files``, ``response_url``,
``faults``, ``recording``, ``socket_api``) is a mixin over :class:`EmulatorState`; ``SlackEmulator``
joins them. Everything runs under ``self._lock``.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from bot.sandbox.slack_emulator.records import (
    Args,
    Ephemeral,
    Message,
    MethodHandler,
    RecordedCall,
    ResponsePost,
    SlackError,
    UploadedFile,
    User,
    UserGroup,
    WebRoute,
)
from bot.sandbox.socket_mode import SocketModeServer

_USER_CHANNEL = re.compile(r"^[UW]")


class EmulatorState:
    """Members, conversations, messages, views, files, recorded calls and faults of one emulated workspace."""

    bot_user: User
    _server: ThreadingHTTPServer
    _socket: SocketModeServer | None

    def __init__(
        self,
        *,
        bot_token: str,
        team_id: str,
        team_name: str,
        team_domain: str,
        bot_id: str,
        clock: Callable[[], float],
        time_scale: float,
        latency: float,
        strict_channels: bool,
        app_token: str | None,
        app_id: str,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.bot_token = bot_token
        self.app_token = app_token
        self.app_id = app_id
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_id = bot_id
        self.time_scale = time_scale
        self.latency = latency
        self.strict_channels = strict_channels
        self._clock = clock
        self._c0 = clock()
        self._t0 = time.time()

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._ids: dict[str, itertools.count[int]] = {}
        self._last_ts = 0.0

        self._users: dict[str, User] = {}
        self._order: dict[str, int] = {}  # user id -> position, for users.list cursors
        self._by_email: dict[str, str] = {}
        self._groups: dict[str, UserGroup] = {}
        self._channels: dict[str, str] = {}  # known C/G channels -> name
        self._dm_of: dict[str, str] = {}  # user id -> D channel
        self._dm_user: dict[str, str] = {}  # D channel -> user id
        self._seeded = 0

        self._calls: list[RecordedCall] = []
        self._messages: dict[str, dict[str, Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, Args] = {}
        self._modals: dict[str, Args] = {}
        self._modal_triggers: dict[str, str] = {}  # view id -> the trigger_id that opened it
        self._mounts: dict[str, WebRoute] = {}
        self._files: dict[str, UploadedFile] = {}
        self._response_posts: list[ResponsePost] = []
        self._methods: dict[str, MethodHandler] = {}

    # ----------------------------------------------------------------- address and time

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def now(self) -> float:
        """Emulated time in seconds (starts at the wall-clock time of construction)."""
        return self._t0 + (self._clock() - self._c0) * self.time_scale

    def sleep(self, seconds: float) -> None:
        """Sleep *seconds* of emulated time (``seconds / time_scale`` real seconds)."""
        if seconds > 0:
            time.sleep(seconds / self.time_scale)

    # ----------------------------------------------------------------- shared helpers

    def _new_id(self, prefix: str) -> str:
        counter = self._ids.setdefault(prefix, itertools.count(1))
        while True:
            candidate = f"{prefix}{next(counter):08X}E"
            if candidate not in self._users and candidate not in self._groups:
                return candidate

    def _ts(self) -> str:
        ts = max(round(self.now(), 6), round(self._last_ts + 0.000001, 6))
        self._last_ts = ts
        return f"{ts:.6f}"

    def _record(self, method: str, args: Args, status: int = 200, error: str | None = None) -> None:
        with self._changed:
            self._calls.append(RecordedCall(method, args, self.now(), status, error))
            self._changed.notify_all()

    def _active_user(self, user_id: str | None, error: str = "user_not_found") -> User:
        user = self._users.get(user_id or "")
        if user is None:
            raise SlackError(error)
        return user

    def _open_dm(self, user: User) -> tuple[str, bool]:
        existing = self._dm_of.get(user.id)
        if existing is not None:
            return existing, True
        channel = f"D{user.id[1:]}"
        while channel in self._dm_user:
            channel = f"D{self._new_id('D')[1:]}"
        self._dm_of[user.id] = channel
        self._dm_user[channel] = user.id
        return channel, False

    def _channel(self, channel: str | None, *, allow_user: bool) -> str:
        """Resolve a channel argument to a channel id (a user id means their DM, when allowed)."""
        if not channel:
            raise SlackError("channel_not_found")
        if _USER_CHANNEL.match(channel):
            if not allow_user:
                raise SlackError("invalid_arguments")
            user = self._users.get(channel)
            if user is None or user.deleted:
                raise SlackError("channel_not_found")
            return self._open_dm(user)[0]
        if channel[0] == "D":
            if self.strict_channels and channel not in self._dm_user:
                raise SlackError("channel_not_found")
            return channel
        if channel[0] in "CGZ":
            if self.strict_channels and channel not in self._channels:
                raise SlackError("channel_not_found")
            return channel
        raise SlackError("channel_not_found")
