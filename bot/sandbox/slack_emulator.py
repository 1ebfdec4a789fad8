"""An in-process Slack Web API emulator: a real HTTP server for the real ``slack_sdk`` / Bolt.

Point ``slack_sdk.WebClient(token=..., base_url=emulator.api_url)`` at it. It serves
``/api/<method>`` (POST or GET, form-encoded, JSON or query parameters, token from
``Authorization: Bearer`` or a ``token`` parameter), the upload URLs handed out by
``files.getUploadURLExternal`` (``/upload/<file_id>``), ``response_url`` endpoints
(``/response/<key>``) and the ``url_private`` of uploaded files (``GET /files/<file_id>/<name>``).
Extra pages (the ``patbot demo`` simulator) can be mounted under a path prefix with
:meth:`SlackEmulator.mount`. Every call is recorded; faults (429 with ``Retry-After``, ``ok: false``
errors, latency, a per-method token bucket) can be injected.

Socket Mode: given an ``app_token`` (``xapp-…``), ``apps.connections.open`` (called with that token;
the bot token gets ``not_allowed_token_type``, any other ``invalid_auth``) answers the URL of a
WebSocket endpoint (:mod:`bot.sandbox.socket_mode`) on its own port. :meth:`SlackEmulator.socket_send`
pushes an envelope to the connected app and :meth:`SlackEmulator.socket_acks` reads its acks.

Time: the emulator's clock is ``clock()`` (default ``time.time``) sped up by ``time_scale``.
Token buckets, ``Retry-After`` values, latency and recorded times are in emulated seconds;
:meth:`SlackEmulator.sleep` waits emulated seconds, so a benchmark can inject it as the
sender's sleep and run a long campaign faster than real time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import itertools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.sandbox.socket_mode import SocketAck, SocketEnvelope, SocketModeServer

__all__ = [
    "Ephemeral",
    "Message",
    "RecordedCall",
    "ResponsePost",
    "SlackEmulator",
    "SlackError",
    "SocketAck",
    "SocketEnvelope",
    "UploadedFile",
    "User",
    "UserGroup",
    "WebRequest",
    "WebResponse",
    "WebRoute",
]

log = logging.getLogger(__name__)

Args = dict[str, Any]
MethodHandler = Callable[[Args], Args]

_MAX_PAGE = 1000
_USER_CHANNEL = re.compile(r"^[UW]")
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # called with the app-level token


class SlackError(Exception):
    """Raised by a method handler: answered as ``{"ok": false, "error": <error>}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


# --------------------------------------------------------------------------- state


@dataclass
class User:
    """A workspace member as ``users.*`` report it."""

    id: str
    name: str
    real_name: str = ""
    email: str | None = None
    deleted: bool = False
    is_bot: bool = False
    tz: str = "UTC"
    team_id: str = "T1"
    bot_id: str | None = None

    def to_api(self) -> Args:
        """The Slack user object."""
        profile: Args = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "team": self.team_id,
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.bot_id is not None:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": _tz_offset(self.tz),
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 0,
        }


@dataclass
class UserGroup:
    """A user group (``S…``) and its members."""

    id: str
    handle: str
    users: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedCall:
    """One request the emulator received. ``args`` never contains the token.

    ``method`` is the Web API method, or ``"upload"`` / ``"response_url"`` for those endpoints.
    ``time`` is emulated time; ``status`` the HTTP status; ``error`` the Slack error, if any.
    """

    method: str
    args: Args
    time: float
    status: int = 200
    error: str | None = None


@dataclass
class Message:
    """A message posted by the bot, mutated in place by ``chat.update``."""

    channel: str
    ts: str
    text: str = ""
    blocks: list[Any] = field(default_factory=list)
    attachments: list[Any] = field(default_factory=list)
    thread_ts: str | None = None
    files: list[Args] = field(default_factory=list)
    user: str = ""
    edits: int = 0

    def to_api(self, bot_id: str) -> Args:
        """The Slack message object."""
        out: Args = {"type": "message", "text": self.text, "user": self.user, "bot_id": bot_id, "ts": self.ts}
        if self.blocks:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.files:
            out["files"] = self.files
        return out


@dataclass(frozen=True)
class Ephemeral:
    """A ``chat.postEphemeral`` message."""

    channel: str
    user: str
    message_ts: str
    text: str = ""
    blocks: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ResponsePost:
    """A JSON body POSTed to a ``response_url``."""

    key: str
    body: Args
    time: float


@dataclass
class UploadedFile:
    """A file going through ``getUploadURLExternal`` → upload POST → ``completeUploadExternal``."""

    file_id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False


@dataclass
class _RateLimitFault:
    remaining: int | None
    every: int | None
    retry_after: int
    seen: int = 0


@dataclass
class _FailFault:
    error: str
    remaining: int | None
    status: int


@dataclass
class _Bucket:
    capacity: float
    rate: float  # tokens per emulated second
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token; 0.0 when granted, else emulated seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(frozen=True)
class WebRequest:
    """A request to a mounted route: *path* is the full path (prefix included), *query* its query string."""

    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class WebResponse:
    """What a mounted route answers."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


WebRoute = Callable[[WebRequest], WebResponse]


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _tz_offset(tz: str) -> int:
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset else 0


def _json_reply(data: Args, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(data).encode("utf-8"), headers=headers)


def _text_reply(text: str, status: int = 200) -> _Reply:
    return _Reply(status, text.encode("utf-8"), content_type="text/plain; charset=utf-8")


# --------------------------------------------------------------------------- argument helpers


def _str(args: Args, key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else str(value)


def _required(args: Args, key: str, error: str = "invalid_arguments") -> str:
    value = _str(args, key)
    if not value:
        raise SlackError(error)
    return value


def _int(args: Args, key: str, default: int) -> int:
    value = args.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None


def _flag(args: Args, key: str) -> bool:
    value = args.get(key)
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


def _json(args: Args, key: str) -> Any:
    """A parameter that form bodies carry as a JSON string and JSON bodies carry as a value."""
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SlackError("invalid_arguments") from None
    return value


def _list(args: Args, key: str) -> list[Any]:
    value = _json(args, key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SlackError(f"invalid_{key}")
    return value


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


# --------------------------------------------------------------------------- emulator


class SlackEmulator:
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

        self._rate_faults: dict[str, _RateLimitFault] = {}
        self._fail_faults: dict[str, _FailFault] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._latencies: dict[str, float] = {}

        self.bot_user = User(
            id=bot_user_id, name=bot_name, real_name=bot_name, is_bot=True, team_id=team_id, bot_id=bot_id
        )
        self._put_user(self.bot_user)

        self._methods: dict[str, MethodHandler] = {
            "auth.test": self._auth_test,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.open": self._conversations_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "apps.connections.open": self._apps_connections_open,
        }

        handler = type("_BoundHandler", (_Handler,), {"emulator": self})
        self._server = _Server((host, port), handler)
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
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)`` (ends with ``/api/``)."""
        return f"{self.base_url}/api/"

    # ----------------------------------------------------------------- time

    def now(self) -> float:
        """Emulated time in seconds (starts at the wall-clock time of construction)."""
        return self._t0 + (self._clock() - self._c0) * self.time_scale

    def sleep(self, seconds: float) -> None:
        """Sleep *seconds* of emulated time (``seconds / time_scale`` real seconds)."""
        if seconds > 0:
            time.sleep(seconds / self.time_scale)

    # ----------------------------------------------------------------- seeding

    def _new_id(self, prefix: str) -> str:
        counter = self._ids.setdefault(prefix, itertools.count(1))
        while True:
            candidate = f"{prefix}{next(counter):08X}E"
            if candidate not in self._users and candidate not in self._groups:
                return candidate

    def _put_user(self, user: User) -> None:
        old = self._users.get(user.id)
        if old is not None and old.email:
            self._by_email.pop(old.email.lower(), None)
        if user.id not in self._order:
            self._order[user.id] = len(self._order)
        self._users[user.id] = user
        if user.email:
            self._by_email[user.email.lower()] = user.id

    def add_user(
        self,
        name: str | None = None,
        *,
        email: str | None = None,
        real_name: str | None = None,
        deleted: bool = False,
        is_bot: bool = False,
        tz: str = "UTC",
        user_id: str | None = None,
    ) -> User:
        """Add (or replace, when *user_id* exists) a workspace member."""
        with self._lock:
            uid = user_id or self._new_id("U")
            uname = name or (email.split("@")[0] if email else uid.lower())
            user = User(
                id=uid,
                name=uname,
                real_name=real_name if real_name is not None else uname.replace(".", " ").title(),
                email=email,
                deleted=deleted,
                is_bot=is_bot,
                tz=tz,
                team_id=self.team_id,
                bot_id=f"B{uid[1:]}" if is_bot else None,
            )
            self._put_user(user)
            return user

    def seed_users(self, n: int, domain: str = "example.com", *, deleted_every: int = 0) -> list[User]:
        """Add *n* users ``userNNNNN@<domain>``; with *deleted_every* > 0 every Nth is deactivated."""
        with self._lock:
            added = []
            for _ in range(n):
                self._seeded += 1
                i = self._seeded
                added.append(
                    self.add_user(
                        f"user{i:05d}",
                        email=f"user{i:05d}@{domain}",
                        real_name=f"User {i:05d}",
                        deleted=deleted_every > 0 and i % deleted_every == 0,
                    )
                )
            return added

    def set_deleted(self, user_id: str, deleted: bool = True) -> None:
        """Deactivate (or reactivate) a member."""
        with self._lock:
            self._users[user_id].deleted = deleted

    def add_usergroup(
        self, user_ids: Iterable[str], handle: str | None = None, group_id: str | None = None
    ) -> str:
        """Add a user group with these members; returns its ``S…`` id."""
        with self._lock:
            gid = group_id or self._new_id("S")
            self._groups[gid] = UserGroup(id=gid, handle=handle or gid.lower(), users=list(user_ids))
            return gid

    def add_channel(self, channel_id: str | None = None, name: str = "channel") -> str:
        """Register a public channel (only matters with ``strict_channels``); returns its id."""
        with self._lock:
            cid = channel_id or self._new_id("C")
            self._channels[cid] = name
            return cid

    def user(self, user_id: str) -> User | None:
        """The member with this id, if any."""
        with self._lock:
            return self._users.get(user_id)

    # ----------------------------------------------------------------- faults

    def rate_limit(
        self, method: str, times: int | None = None, every: int | None = None, retry_after: int = 1
    ) -> None:
        """Answer *method* with HTTP 429 + ``Retry-After`` (body ``ratelimited``).

        For the next *times* calls, or every *every*-th call from now on, or (neither given)
        every call until :meth:`reset_faults`. Replaces an earlier ``rate_limit`` on *method*.
        """
        if times is not None and every is not None:
            raise ValueError("give times or every, not both")
        with self._lock:
            self._rate_faults[method] = _RateLimitFault(times, every, retry_after)

    def set_rate_limit(self, method: str, per_minute: float, burst: int | None = None) -> None:
        """A token bucket for *method*: *per_minute* calls per emulated minute, *burst* at once.

        *burst* defaults to one second's worth (at least 1). An empty bucket answers 429 with
        ``Retry-After`` = emulated seconds until the next token, rounded up (at least 1), and the
        exact value in ``X-Emulator-Retry-After``.
        """
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        capacity = float(burst if burst is not None else max(1, math.ceil(per_minute / 60)))
        with self._lock:
            self._buckets[method] = _Bucket(capacity, per_minute / 60.0, capacity, self.now())

    def fail(
        self, method: str, error: str = "internal_error", times: int | None = 1, status: int = 200
    ) -> None:
        """Answer the next *times* calls of *method* (all, with ``None``) with ``ok: false``.

        *method* may also be ``"upload"`` or ``"response_url"``; those answer *status*
        (500 when left at 200) with *error* as text.
        """
        with self._lock:
            self._fail_faults[method] = _FailFault(error, times, status)

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every answer (or *method*'s) by *seconds* of emulated time."""
        with self._lock:
            if method is None:
                self.latency = seconds
            else:
                self._latencies[method] = seconds

    def reset_faults(self) -> None:
        """Remove every injected fault, token bucket and latency."""
        with self._lock:
            self._rate_faults.clear()
            self._fail_faults.clear()
            self._buckets.clear()
            self._latencies.clear()
            self.latency = 0.0

    # ----------------------------------------------------------------- recordings

    def calls(self, method: str | None = None, *, ok_only: bool = False) -> list[RecordedCall]:
        """Recorded calls, oldest first; optionally of one method, or only successful ones."""
        with self._lock:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method) and not (ok_only and (c.error or c.status != 200))
            ]

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[RecordedCall]:
        """Block until *method* has been called *count* times (real-time *timeout*)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.calls(method)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method}: {len(found)} of {count} calls after {timeout}s")
                self._changed.wait(left)
            return found

    def messages_to(self, channel: str) -> list[Message]:
        """Copies of the messages in *channel* (a user id means their DM), oldest first."""
        with self._lock:
            channel = self._dm_of.get(channel, channel)
            return [replace(m) for m in self._messages.get(channel, {}).values()]

    def message(self, channel: str, ts: str) -> Message | None:
        """A copy of one stored message."""
        with self._lock:
            found = self._messages.get(self._dm_of.get(channel, channel), {}).get(ts)
            return replace(found) if found else None

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        """``chat.postEphemeral`` messages, optionally for one user and/or channel."""
        with self._lock:
            return [
                e
                for e in self._ephemerals
                if (user is None or e.user == user) and (channel is None or e.channel == channel)
            ]

    def modals(self) -> list[Args]:
        """Every modal opened (as last updated), oldest first."""
        with self._lock:
            return [copy.deepcopy(v) for v in self._modals.values()]

    def modal_trigger(self, view_id: str) -> str | None:
        """The ``trigger_id`` that opened modal *view_id* (Slack shows a modal to that trigger's user)."""
        with self._lock:
            return self._modal_triggers.get(view_id)

    def home_view(self, user_id: str) -> Args | None:
        """The App Home view last published for *user_id*."""
        with self._lock:
            view = self._views.get(user_id)
            return copy.deepcopy(view) if view is not None else None

    def dm_channel_of(self, user_id: str) -> str | None:
        """The ``D…`` channel opened with *user_id*, if one was."""
        with self._lock:
            return self._dm_of.get(user_id)

    @property
    def uploads(self) -> list[UploadedFile]:
        """Copies of every file upload started, oldest first."""
        with self._lock:
            return [replace(f, channels=list(f.channels)) for f in self._files.values()]

    def response_url(self, key: str | None = None) -> str:
        """A ``response_url`` on this emulator; POSTs to it are kept under *key*."""
        with self._lock:
            key = key or self._new_id("R").lower()
        return f"{self.base_url}/response/{key}"

    def response_posts(self, key: str | None = None) -> list[ResponsePost]:
        """Bodies POSTed to ``response_url``s (one key's, or all), oldest first."""
        with self._lock:
            return [p for p in self._response_posts if key is None or p.key == key]

    def clear(self) -> None:
        """Forget recorded traffic (calls, messages, ephemerals, views, uploads, response posts).

        Users, groups, DM channels and faults stay.
        """
        with self._lock:
            self._calls.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._views.clear()
            self._files.clear()
            self._response_posts.clear()
        if self._socket is not None:
            self._socket.clear()

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

    # ----------------------------------------------------------------- Socket Mode

    def _socket_server(self) -> SocketModeServer:
        if self._socket is None:
            raise RuntimeError("Socket Mode needs SlackEmulator(app_token=...)")
        return self._socket

    def socket_send(
        self,
        envelope_type: str,
        payload: Args,
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Push a Socket Mode envelope (``slash_commands``, ``interactive``, ``events_api``) to the
        newest connection; returns its ``envelope_id``. The payload is what Slack would POST over
        HTTP, as a JSON object (a slash command's form fields become its keys).

        ``accepts_response_payload`` defaults to Slack's (true for slash commands, view submissions
        and block suggestions). Raises :class:`RuntimeError` when no app is connected.
        """
        return self._socket_server().send(
            envelope_type,
            payload,
            envelope_id=envelope_id,
            accepts_response_payload=accepts_response_payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )

    def socket_acks(self, envelope_id: str | None = None) -> list[SocketAck]:
        """Acks the app sent over the socket (for one envelope, or all), oldest first."""
        return self._socket_server().acks(envelope_id)

    def wait_for_socket_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        """Block until the app acks *envelope_id* (real-time *timeout*)."""
        return self._socket_server().wait_for_ack(envelope_id, timeout)

    def socket_envelopes(self) -> list[SocketEnvelope]:
        """Envelopes pushed with :meth:`socket_send`, oldest first."""
        return self._socket_server().envelopes()

    def socket_connected(self) -> bool:
        """Whether an app holds an open Socket Mode connection (it has had its ``hello``)."""
        return self._socket is not None and self._socket.connection_count() > 0

    def socket_connections_opened(self) -> int:
        """Socket Mode connections made so far (reconnections count)."""
        return self._socket.connections_opened if self._socket is not None else 0

    def wait_for_socket(self, timeout: float = 5.0, opened: int = 1) -> None:
        """Block until an app is connected and *opened* connections were ever made (real seconds)."""
        self._socket_server().wait_connected(timeout, opened)

    def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message: the app should open a new connection."""
        self._socket_server().send_disconnect(reason)

    def socket_drop(self, code: int | None = None) -> None:
        """Close every Socket Mode connection (with a close frame carrying *code*, or abruptly)."""
        self._socket_server().drop_connections(code)

    # ----------------------------------------------------------------- request plumbing

    def _record(self, method: str, args: Args, status: int = 200, error: str | None = None) -> None:
        with self._changed:
            self._calls.append(RecordedCall(method, args, self.now(), status, error))
            self._changed.notify_all()

    def _delay(self, method: str) -> None:
        with self._lock:
            seconds = self._latencies.get(method, self.latency)
        self.sleep(seconds)

    def _fault(self, method: str) -> tuple[int, str, int | None, float | None] | None:
        """(status, error, retry_after, exact_retry_after) of an injected fault, if one applies."""
        fault = self._rate_faults.get(method)
        if fault is not None:
            fault.seen += 1
            if fault.every is not None:
                hit = fault.seen % fault.every == 0
            elif fault.remaining is not None:
                hit = fault.remaining > 0
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._rate_faults[method]
            else:
                hit = True
            if hit:
                return 429, "ratelimited", fault.retry_after, None
        bucket = self._buckets.get(method)
        if bucket is not None:
            wait = bucket.take(self.now())
            if wait > 0:
                return 429, "ratelimited", max(1, math.ceil(wait)), wait
        failure = self._fail_faults.get(method)
        if failure is not None:
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._fail_faults[method]
            return failure.status, failure.error, None, None
        return None

    def _handle_api(self, method: str, args: Args, token: str | None) -> _Reply:
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
            return _json_reply(result, status, headers)

    def _check_token(self, method: str, token: str) -> None:
        """App-level methods take only the app token, the others only the bot token."""
        if method in _APP_TOKEN_METHODS:
            if self.app_token is not None and token == self.app_token:
                return
            raise SlackError("not_allowed_token_type" if token == self.bot_token else "invalid_auth")
        if token != self.bot_token:
            wrong_type = self.app_token is not None and token == self.app_token
            raise SlackError("not_allowed_token_type" if wrong_type else "invalid_auth")

    def _text_fault(self, method: str, args: Args) -> _Reply | None:
        """An injected fault for a non-API endpoint, answered as text (ok:false errors become 500)."""
        fault = self._fault(method)
        if fault is None:
            return None
        status, error, retry_after, _ = fault
        status = 500 if status == 200 else status
        self._record(method, args, status, error)
        reply = _text_reply(error, status)
        if retry_after is not None:
            reply = replace(reply, headers=(("Retry-After", str(retry_after)),))
        return reply

    def _handle_upload(self, file_id: str, data: bytes) -> _Reply:
        self._delay("upload")
        with self._lock:
            args: Args = {"file_id": file_id, "length": len(data)}
            faulted = self._text_fault("upload", args)
            if faulted is not None:
                return faulted
            upload = self._files.get(file_id)
            if upload is None:
                self._record("upload", args, 404, "file_not_found")
                return _text_reply("file_not_found", 404)
            upload.content = data
            self._record("upload", args)
            return _text_reply(f"OK - {len(data)}")

    def _handle_response_url(self, key: str, data: bytes) -> _Reply:
        self._delay("response_url")
        with self._lock:
            try:
                body = json.loads(data or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            if not isinstance(body, dict):
                self._record("response_url", {"key": key}, 400, "invalid_payload")
                return _text_reply("invalid_payload", 400)
            faulted = self._text_fault("response_url", {"key": key, **body})
            if faulted is not None:
                return faulted
            self._response_posts.append(ResponsePost(key, body, self.now()))
            self._record("response_url", {"key": key, **body})
            return _text_reply("ok")

    def _handle_file_download(self, file_id: str, name: str) -> _Reply:
        """``url_private``: the content of a completed upload."""
        with self._lock:
            upload = self._files.get(file_id)
            if upload is None or not upload.completed or upload.content is None or upload.filename != name:
                return _text_reply("file_not_found", 404)
            content_type = "text/csv; charset=utf-8" if name.endswith(".csv") else "application/octet-stream"
            if name.endswith(".png"):
                content_type = "image/png"
            return _Reply(200, upload.content, content_type=content_type)

    # ----------------------------------------------------------------- helpers for handlers

    def _ts(self) -> str:
        ts = max(round(self.now(), 6), round(self._last_ts + 0.000001, 6))
        self._last_ts = ts
        return f"{ts:.6f}"

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

    # ----------------------------------------------------------------- methods

    def _apps_connections_open(self, args: Args) -> Args:
        # Only reached with the app token (see _check_token), so the socket server exists.
        return {"url": self._socket_server().issue_url()}

    def _auth_test(self, args: Args) -> Args:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_user.name,
            "team_id": self.team_id,
            "user_id": self.bot_user.id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _users_info(self, args: Args) -> Args:
        return {"user": self._active_user(_str(args, "user")).to_api()}

    def _users_list(self, args: Args) -> Args:
        limit = _int(args, "limit", 0)
        limit = _MAX_PAGE if limit <= 0 else min(limit, _MAX_PAGE)
        start = 0
        cursor = _str(args, "cursor")
        if cursor:
            try:
                kind, _, uid = base64.b64decode(cursor, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise SlackError("invalid_cursor") from None
            if kind != "user" or uid not in self._order:
                raise SlackError("invalid_cursor")
            start = self._order[uid]
        ids = list(self._users)  # insertion order == self._order
        page = ids[start : start + limit]
        rest = ids[start + limit : start + limit + 1]
        next_cursor = base64.b64encode(f"user:{rest[0]}".encode()).decode() if rest else ""
        return {
            "members": [self._users[uid].to_api() for uid in page],
            "cache_ts": int(self.now()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _users_lookup_by_email(self, args: Args) -> Args:
        email = _required(args, "email", "users_not_found").lower()
        user = self._users.get(self._by_email.get(email, ""))
        if user is None or user.deleted:  # Slack hides deactivated users here
            raise SlackError("users_not_found")
        return {"user": user.to_api()}

    def _usergroups_users_list(self, args: Args) -> Args:
        group = self._groups.get(_str(args, "usergroup") or "")
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group.users)}

    def _conversations_open(self, args: Args) -> Args:
        channel = _str(args, "channel")
        user_ids = _csv(_str(args, "users"))
        if channel:
            if channel not in self._dm_user:
                raise SlackError("channel_not_found")
            dm, existed = channel, True
            user = self._users[self._dm_user[channel]]
        elif len(user_ids) == 1:
            user = self._active_user(user_ids[0])
            if user.deleted:
                raise SlackError("user_disabled")
            dm, existed = self._open_dm(user)
        elif user_ids:
            raise SlackError("method_not_supported_for_channel_type")  # group DMs aren't emulated
        else:
            raise SlackError("users_list_not_supplied")
        info: Args = {"id": dm}
        if _flag(args, "return_im"):
            info.update({"created": int(self.now()), "is_im": True, "is_org_shared": False, "user": user.id})
        return {"no_op": existed, "already_open": existed, "channel": info}

    def _chat_post_message(self, args: Args) -> Args:
        channel = self._channel(_str(args, "channel"), allow_user=True)
        text = _str(args, "text") or ""
        blocks, attachments = _list(args, "blocks"), _list(args, "attachments")
        if not (text or blocks or attachments):
            raise SlackError("no_text")
        thread_ts = _str(args, "thread_ts")
        msg = Message(channel, self._ts(), text, blocks, attachments, thread_ts, user=self.bot_user.id)
        self._messages.setdefault(channel, {})[msg.ts] = msg
        return {"channel": channel, "ts": msg.ts, "message": msg.to_api(self.bot_id)}

    def _chat_update(self, args: Args) -> Args:
        channel = _str(args, "channel") or ""
        ts = _str(args, "ts") or ""
        msg = self._messages.get(channel, {}).get(ts)
        if msg is None:
            raise SlackError("message_not_found")
        if args.get("text") is not None:
            msg.text = _str(args, "text") or ""
        if args.get("blocks") is not None:
            msg.blocks = _list(args, "blocks")
        if args.get("attachments") is not None:
            msg.attachments = _list(args, "attachments")
        if not (msg.text or msg.blocks or msg.attachments):
            raise SlackError("no_text")
        msg.edits += 1
        return {"channel": channel, "ts": ts, "text": msg.text, "message": msg.to_api(self.bot_id)}

    def _chat_post_ephemeral(self, args: Args) -> Args:
        user = self._active_user(_str(args, "user"))
        if user.deleted:
            raise SlackError("user_not_found")
        channel = self._channel(_str(args, "channel"), allow_user=True)
        text = _str(args, "text") or ""
        blocks, attachments = _list(args, "blocks"), _list(args, "attachments")
        if not (text or blocks or attachments):
            raise SlackError("no_text")
        ts = self._ts()
        self._ephemerals.append(Ephemeral(channel, user.id, ts, text, blocks))
        return {"message_ts": ts}

    def _views_publish(self, args: Args) -> Args:
        user = self._active_user(_str(args, "user_id"))
        view = _json(args, "view")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackError("invalid_arguments")
        previous = self._views.get(user.id)
        published: Args = {
            "id": previous["id"] if previous else self._new_id("V"),
            "team_id": self.team_id,
            "app_id": "A1",
            "bot_id": self.bot_id,
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "state": {"values": {}},
            "hash": f"{self.now():.6f}",
            **view,
        }
        self._views[user.id] = published
        return {"view": copy.deepcopy(published)}

    def _views_open(self, args: Args) -> Args:
        if not _str(args, "trigger_id"):
            raise SlackError("invalid_trigger_id")
        view = _json(args, "view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        opened: Args = {
            "id": self._new_id("V"),
            "team_id": self.team_id,
            "app_id": "A1",
            "bot_id": self.bot_id,
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "state": {"values": {}},
            "hash": f"{self.now():.6f}",
            **view,
        }
        self._modals[opened["id"]] = opened
        self._modal_triggers[opened["id"]] = _str(args, "trigger_id") or ""
        return {"view": copy.deepcopy(opened)}

    def _views_update(self, args: Args) -> Args:
        view_id = _str(args, "view_id")
        current = self._modals.get(view_id or "")
        if current is None:
            raise SlackError("not_found")
        view = _json(args, "view")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        updated: Args = {**current, "callback_id": "", "private_metadata": "", **view}
        updated["hash"] = f"{self.now():.6f}"
        self._modals[current["id"]] = updated
        return {"view": copy.deepcopy(updated)}

    def _files_get_upload_url_external(self, args: Args) -> Args:
        filename = _required(args, "filename")
        length = _int(args, "length", -1)
        if length < 0:
            raise SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self._files[file_id] = UploadedFile(file_id, filename, length)
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: Args) -> Args:
        entries = _list(args, "files")
        if not entries:
            raise SlackError("invalid_arguments")
        # Slack accepts only conversation ids here (^[CGDZ]...), not user ids.
        targets = [_str(args, "channel_id")] if args.get("channel_id") else _csv(_str(args, "channels"))
        channels = [self._channel(c, allow_user=False) for c in targets]
        initial_comment = _str(args, "initial_comment")
        thread_ts = _str(args, "thread_ts")
        completed: list[UploadedFile] = []
        for entry in entries:
            upload = self._files.get(str(entry.get("id", ""))) if isinstance(entry, dict) else None
            if upload is None or upload.content is None:
                raise SlackError("file_not_found")
            upload.title = str(entry.get("title") or upload.filename)
            completed.append(upload)
        for upload in completed:
            upload.channels = channels
            upload.initial_comment = initial_comment
            upload.thread_ts = thread_ts
            upload.completed = True
        infos = [self._file_info(u) for u in completed]
        for channel in channels:
            msg = Message(channel, self._ts(), initial_comment or "", thread_ts=thread_ts, files=infos)
            msg.user = self.bot_user.id
            self._messages.setdefault(channel, {})[msg.ts] = msg
        return {"files": infos}

    def _file_info(self, upload: UploadedFile) -> Args:
        url = f"{self.base_url}/files/{upload.file_id}/{upload.filename}"
        return {
            "id": upload.file_id,
            "created": int(self.now()),
            "timestamp": int(self.now()),
            "name": upload.filename,
            "title": upload.title,
            "mimetype": "text/csv" if upload.filename.endswith(".csv") else "application/octet-stream",
            "filetype": upload.filename.rpartition(".")[2] if "." in upload.filename else "binary",
            "user": self.bot_user.id,
            "size": len(upload.content or b""),
            "url_private": url,
            "permalink": url,
            "channels": [],
            "shares": {},
        }


# --------------------------------------------------------------------------- HTTP layer


class _Handler(BaseHTTPRequestHandler):
    """Routes ``/api/<method>``, ``/upload/<file_id>`` and ``/response/<key>``."""

    emulator: SlackEmulator
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        data = self._body()
        parts = [unquote(p) for p in url.path.split("/") if p]
        route = self.emulator._mounted(url.path)
        if route is not None:
            self._send_web(route, url.path, url.query, data)
            return
        try:
            if len(parts) == 2 and parts[0] == "api":
                args, token = self._api_args(url.query, data)
                reply = self.emulator._handle_api(parts[1], args, token)
            elif len(parts) == 2 and parts[0] == "upload" and self.command == "POST":
                reply = self.emulator._handle_upload(parts[1], data)
            elif len(parts) == 2 and parts[0] == "response" and self.command == "POST":
                reply = self.emulator._handle_response_url(parts[1], data)
            elif len(parts) == 3 and parts[0] == "files" and self.command == "GET":
                reply = self.emulator._handle_file_download(parts[1], parts[2])
            else:
                reply = _text_reply("not found", 404)
        except _BadRequest:
            reply = _json_reply({"ok": False, "error": "invalid_form_data"})
        self._send(reply)

    def _api_args(self, query: str, data: bytes) -> tuple[Args, str | None]:
        args: Args = dict(parse_qsl(query, keep_blank_values=True))
        content_type = self.headers.get_content_type()
        if data:
            try:
                if content_type == "application/json":
                    body = json.loads(data)
                    if not isinstance(body, dict):
                        raise _BadRequest
                    args.update(body)
                elif content_type == "application/x-www-form-urlencoded":
                    args.update(parse_qsl(data.decode("utf-8"), keep_blank_values=True))
                else:
                    raise _BadRequest
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise _BadRequest from None
        token = args.pop("token", None)
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip()
        return args, cast("str | None", token)

    def _send_web(self, route: WebRoute, path: str, query: str, data: bytes) -> None:
        request = WebRequest(self.command, path, query, data, {k.lower(): v for k, v in self.headers.items()})
        try:
            answer = route(request)
        except Exception:
            log.exception("slack emulator: mounted route %s failed", path)
            answer = WebResponse(500, b"internal error", "text/plain; charset=utf-8")
        self._send(_Reply(answer.status, answer.body, answer.content_type, answer.headers))

    def _send(self, reply: _Reply) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)


class _BadRequest(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 stalls concurrent clients on SYN retries
