"""What the Slack emulator holds and records: members, messages, files, calls, mounted web routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Args = dict[str, Any]
MethodHandler = Callable[[Args], Args]


class SlackError(Exception):
    """Raised by a method handler: answered as ``{"ok": false, "error": <error>}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


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
            "tz_offset": tz_offset(self.tz),
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
    """What a mounted route answers (and what every endpoint of the emulator answers)."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


WebRoute = Callable[[WebRequest], WebResponse]


def tz_offset(tz: str) -> int:
    """The UTC offset of an IANA time zone now, in seconds (0 when unknown)."""
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset else 0
