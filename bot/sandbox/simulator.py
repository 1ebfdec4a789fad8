"""The Slack simulator page of `patbot demo`: a browser stand-in for the Slack client.

Mounted on the :class:`~bot.sandbox.slack_emulator.SlackEmulator` (``/simulator/``), it shows what each
demo user would see in Slack — the admin channel, their DM with the bot, their ephemeral messages, the
App Home tab and modals — and turns what they do into the requests Slack would send the app: signed
slash commands with a ``response_url`` on the emulator, signed ``block_actions`` (with the container,
message and channel Slack includes), ``view_submission`` and ``app_home_opened``.

The page (``simulator_static/``) polls ``GET api/state?user=…`` and posts JSON to ``api/command``,
``api/action``, ``api/submit``, ``api/close``, ``api/home`` and ``api/weekly``. Only JSON POSTs from
the page's own origin are accepted, so another site open in the browser cannot drive the bot, and
only requests addressed to the emulator's own host name (or a loopback name) are answered, which
defeats DNS rebinding; an emulator bound to all interfaces answers any host name.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox.slack_emulator import Message, SlackEmulator, WebRequest, WebResponse
from bot.sandbox.slack_signing import (
    block_action_body,
    event_body,
    headers_for,
    slash_command_body,
    view_submission_body,
)

__all__ = ["Person", "Simulator"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
WeeklyJob = Callable[[], str]

_STATIC = {
    "simulator.js": "text/javascript; charset=utf-8",
    "simulator.css": "text/css; charset=utf-8",
}
_PAGE_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)")
_TYPED_MENTION = re.compile(r"(?<![\w<@])([@#])([A-Za-z0-9][\w.-]*[\w])")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_WILDCARD = frozenset({"0.0.0.0", "::", ""})
_BOT_TIMEOUT = 15.0
_VIEW_IDENTITY = ("id", "team_id", "app_id", "bot_id", "root_view_id", "hash")
_VIEW_DEFAULTS: Json = {"callback_id": "", "private_metadata": "", "external_id": "", "state": {"values": {}}}


@dataclass(frozen=True)
class Person:
    """A user the page can switch to, with a short description of their role in the demo."""

    user_id: str
    role: str


@dataclass
class _Ephemeral:
    id: str
    user: str
    channel: str
    ts: str
    text: str
    blocks: list[Any]


@dataclass(frozen=True)
class _Note:
    """A line only the page shows: the command a user typed (Slack never posts slash commands)."""

    user: str
    channel: str
    ts: str
    text: str


@dataclass(frozen=True)
class _Origin:
    """Where a ``response_url`` answers: a user in a channel, and the message it may replace."""

    user: str
    channel: str
    ephemeral: str | None = None
    message_ts: str | None = None


@dataclass
class _Replacement:
    """A channel message replaced through ``response_url``; a later ``chat.update`` wins."""

    edits: int
    text: str
    blocks: list[Any]


@dataclass
class _Weekly:
    running: bool = False
    last: str | None = None
    error: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)


class Simulator:
    """The simulator's state and JSON API; :meth:`mount` serves it (and the page) on the emulator."""

    def __init__(
        self,
        slack: SlackEmulator,
        *,
        bot_url: str,
        signing_secret: str,
        admin_channel: str,
        admin_channel_name: str,
        people: Sequence[Person],
        command: str = "/pat",
        weekly_job: WeeklyJob | None = None,
        weekly_unavailable: str = "the weekly job is not available in this build",
        prefix: str = "/simulator",
    ) -> None:
        self.slack = slack
        self.bot_url = bot_url
        self.prefix = prefix
        self.command_name = command
        self._secret = signing_secret
        self._admin_channel = admin_channel
        self._admin_channel_name = admin_channel_name
        self._people = list(people)
        self._weekly_job = weekly_job
        self._weekly_unavailable = weekly_unavailable
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._dms: dict[str, str] = {}
        self._origins: dict[str, _Origin] = {}
        self._ephemerals: list[_Ephemeral] = []
        self._notes: list[_Note] = []
        self._extra: dict[str, list[Message]] = {}  # in_channel responses
        self._replaced: dict[tuple[str, str], _Replacement] = {}
        self._deleted: set[tuple[str, str]] = set()
        self._triggers: dict[str, str] = {}  # trigger_id -> user
        self._modal_acks: dict[str, tuple[str, Json]] = {}  # view id -> (hash it answered, view)
        self._closed: set[str] = set()
        self._seen_posts = 0
        self._seen_ephemerals = 0
        self._weekly = _Weekly()

    # ------------------------------------------------------------------ serving

    @property
    def url(self) -> str:
        """The page's address."""
        return f"{self.slack.base_url}{self.prefix}/"

    def mount(self) -> str:
        """Serve the page and its API on the emulator; returns the page's URL."""
        self.slack.mount(self.prefix, self.handle)
        return self.url

    def wait_weekly(self, timeout: float = 30.0) -> None:
        """Wait for a running weekly job to finish (shutdown, tests)."""
        thread = self._weekly.thread
        if thread is not None:
            thread.join(timeout)

    def handle(self, request: WebRequest) -> WebResponse:
        """Route one request under the prefix."""
        path = request.path[len(self.prefix) :]
        if not self._host_allowed(request.headers.get("host", "")):
            return _error(421, "this page answers only on the address the demo printed")
        if request.method == "GET":
            if path == "":
                return WebResponse(302, b"", "text/plain", (("Location", self.prefix + "/"),))
            if path in ("/", "/index.html"):
                return _static("index.html", "text/html; charset=utf-8")
            if path.startswith("/static/") and path[len("/static/") :] in _STATIC:
                name = path[len("/static/") :]
                return _static(name, _STATIC[name])
            if path == "/api/state":
                user = (parse_qs(request.query).get("user") or [""])[0]
                return self._answer(lambda: self.state(user))
            return _error(404, "not found")
        if request.method != "POST" or not path.startswith("/api/"):
            return _error(405, "method not allowed")
        if not _same_origin(request):
            return _error(403, "cross-origin requests are refused")
        try:
            payload = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the body must be JSON")
        if not isinstance(payload, dict):
            return _error(400, "the body must be a JSON object")
        routes: dict[str, Callable[[Json], Json]] = {
            "/api/command": self.run_command,
            "/api/action": self.click,
            "/api/submit": self.submit,
            "/api/close": self.close_modal,
            "/api/home": self.open_home,
            "/api/weekly": self.run_weekly,
        }
        route = routes.get(path)
        if route is None:
            return _error(404, "not found")
        return self._answer(lambda: route(payload))

    def _host_allowed(self, host_header: str) -> bool:
        bound = urlsplit(self.slack.base_url).hostname or ""
        if bound in _WILDCARD:
            return True
        name = urlsplit(f"//{host_header}").hostname or ""
        return name in _LOOPBACK or name == bound

    def _answer(self, produce: Callable[[], Json]) -> WebResponse:
        try:
            body = produce()
        except _Refused as exc:
            return _error(exc.status, str(exc))
        return WebResponse(200, json.dumps(body).encode(), headers=_PAGE_HEADERS)

    # ------------------------------------------------------------------ what a user sees

    def state(self, user_id: str) -> Json:
        """Everything the page shows for `user_id`: people, conversations, timelines, Home, modal."""
        me = self._person(user_id) if user_id else self._people[0]
        self.sync()
        dm = self.dm_of(me.user_id)
        with self._lock:
            timelines = {
                self._admin_channel: self._timeline(me.user_id, self._admin_channel),
                dm: self._timeline(me.user_id, dm),
            }
            modal = self._modal_of(me.user_id)
            weekly = {
                "available": self._weekly_job is not None,
                "note": None if self._weekly_job is not None else self._weekly_unavailable,
                "running": self._weekly.running,
                "last": self._weekly.last,
                "error": self._weekly.error,
            }
        state: Json = {
            "me": self._user_json(me.user_id, me.role),
            "people": [self._user_json(p.user_id, p.role) for p in self._people],
            "conversations": [
                {
                    "key": "admin",
                    "id": self._admin_channel,
                    "name": self._admin_channel_name,
                    "kind": "channel",
                },
                {"key": "dm", "id": dm, "name": self.slack.bot_user.name, "kind": "dm"},
            ],
            "team": self.slack.team_name,
            "bot": {"id": self.slack.bot_user.id, "name": self.slack.bot_user.name},
            "command": self.command_name,
            "timelines": timelines,
            "home": self.slack.home_view(me.user_id),
            "modal": modal,
            "weekly": weekly,
        }
        state["users"] = self._mentioned_users(state)
        return state

    def sync(self) -> None:
        """Apply what arrived on the emulator since last time: response_url posts and postEphemeral."""
        posts = self.slack.response_posts()
        ephemerals = self.slack.ephemerals()
        with self._lock:
            for post in posts[self._seen_posts :]:
                self._apply_response(post.key, post.body, post.time)
            self._seen_posts = len(posts)
            for e in ephemerals[self._seen_ephemerals :]:
                self._ephemerals.append(
                    _Ephemeral(self._new_id("e"), e.user, e.channel, e.message_ts, e.text, list(e.blocks))
                )
            self._seen_ephemerals = len(ephemerals)

    def dm_of(self, user_id: str) -> str:
        """The user's DM channel with the bot, opened through the Web API on first use."""
        with self._lock:
            known = self._dms.get(user_id)
        if known is not None:
            return known
        channel = self.slack.dm_channel_of(user_id) or self._open_dm(user_id)
        with self._lock:
            self._dms[user_id] = channel
        return channel

    def _open_dm(self, user_id: str) -> str:
        body = json.dumps({"users": user_id}).encode()
        request = urllib.request.Request(
            self.slack.api_url + "conversations.open",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.slack.bot_token}"},
        )
        with urllib.request.urlopen(request, timeout=_BOT_TIMEOUT) as response:
            answer = json.loads(response.read())
        if not answer.get("ok"):
            raise _Refused(409, f"cannot open a DM with {user_id}: {answer.get('error')}")
        return str(answer["channel"]["id"])

    def _timeline(self, user_id: str, channel: str) -> list[Json]:
        items: list[Json] = []
        for msg in self.slack.messages_to(channel) + self._extra.get(channel, []):
            if (channel, msg.ts) in self._deleted:
                continue
            text, blocks, edited = self._current(msg)
            items.append(
                {
                    "kind": "message",
                    "id": f"m-{channel}-{msg.ts}",
                    "ts": msg.ts,
                    "text": text,
                    "blocks": blocks,
                    "files": [_file_json(f) for f in msg.files],
                    "thread_ts": msg.thread_ts,
                    "edited": edited,
                    "source": {"kind": "message", "channel": channel, "ts": msg.ts},
                }
            )
        for e in self._ephemerals:
            if e.user == user_id and e.channel == channel:
                items.append(
                    {
                        "kind": "ephemeral",
                        "id": e.id,
                        "ts": e.ts,
                        "text": e.text,
                        "blocks": e.blocks,
                        "files": [],
                        "source": {"kind": "ephemeral", "id": e.id},
                    }
                )
        for n in self._notes:
            if n.user == user_id and n.channel == channel:
                items.append({"kind": "note", "id": f"n-{n.ts}", "ts": n.ts, "text": n.text})
        items.sort(key=lambda item: float(item["ts"]))
        return items

    def _current(self, msg: Message) -> tuple[str, list[Any], bool]:
        replaced = self._replaced.get((msg.channel, msg.ts))
        if replaced is not None and replaced.edits == msg.edits:
            return replaced.text, replaced.blocks, True
        return msg.text, msg.blocks, msg.edits > 0

    def _modal_of(self, user_id: str) -> Json | None:
        for view in reversed(self.slack.modals()):
            view_id = str(view.get("id", ""))
            trigger = self.slack.modal_trigger(view_id) or ""
            if self._triggers.get(trigger) != user_id:
                continue
            if view_id in self._closed:
                return None
            acked = self._modal_acks.get(view_id)
            if acked is not None and acked[0] == view.get("hash"):
                # Slack replaces the view with the one in the ack: only its identity carries over.
                identity = {key: view[key] for key in _VIEW_IDENTITY if key in view}
                return {**_VIEW_DEFAULTS, **acked[1], **identity}
            return view
        return None

    def _user_json(self, user_id: str, role: str = "") -> Json:
        user = self.slack.user(user_id)
        if user is None:
            return {"id": user_id, "name": user_id, "real_name": "", "role": role, "deleted": False}
        return {
            "id": user.id,
            "name": user.name,
            "real_name": user.real_name,
            "role": role,
            "deleted": user.deleted,
        }

    def _mentioned_users(self, state: Json) -> dict[str, Json]:
        ids = set(_MENTION.findall(json.dumps(state))) | {p.user_id for p in self._people}
        ids.add(self.slack.bot_user.id)
        return {uid: self._user_json(uid) for uid in sorted(ids)}

    def _person(self, user_id: Any) -> Person:
        for person in self._people:
            if person.user_id == user_id:
                return person
        raise _Refused(400, "unknown user: pick one of the demo users")

    # ------------------------------------------------------------------ what a user does

    def run_command(self, payload: Json) -> Json:
        """``{"user", "channel", "text"}``: send ``/pat …`` as a signed slash command."""
        me = self._person(payload.get("user"))
        channel = self._channel_for(me.user_id, payload.get("channel"))
        text = str(payload.get("text", "")).strip()
        name, _, rest = text.partition(" ")
        if name != self.command_name:
            raise _Refused(
                400, f"only {self.command_name} commands reach the bot here, e.g. `{self.command_name} help`"
            )
        key = self._response_key(_Origin(me.user_id, channel))
        with self._lock:
            self._notes.append(_Note(me.user_id, channel, self._stamp(), text))
        user = self.slack.user(me.user_id)
        body = slash_command_body(
            self.command_name,
            self._escape_mentions(rest.strip()),
            me.user_id,
            channel,
            self.slack.response_url(key),
            team_id=self.slack.team_id,
            user_name=user.name if user else None,
            channel_name=self._admin_channel_name if channel == self._admin_channel else "directmessage",
            team_domain=self.slack.team_domain,
        )
        status, answer = self._post(body)
        if status == 200 and answer.strip():
            self._ack_as_ephemeral(me.user_id, channel, answer)
        return self._outcome(status, answer)

    def click(self, payload: Json) -> Json:
        """``{"user", "source", "action_id", "block_id", "value", "text"}``: a signed ``block_actions``."""
        me = self._person(payload.get("user"))
        source = payload.get("source")
        if not isinstance(source, dict):
            raise _Refused(400, "source is required")
        action_id = str(payload.get("action_id") or "")
        if not action_id:
            raise _Refused(400, "action_id is required")
        value = payload.get("value")
        common: Json = {
            "block_id": str(payload.get("block_id") or "actions"),
            "action_text": str(payload.get("text") or action_id),
            "team_id": self.slack.team_id,
            "team_domain": self.slack.team_domain,
            "user_name": self._name_of(me.user_id),
            "trigger_id": self._trigger(me.user_id),
        }
        kind = source.get("kind")
        self.sync()
        if kind == "message":
            channel, ts = str(source.get("channel", "")), str(source.get("ts", ""))
            message = self._message_json(me.user_id, channel, ts)
            key = self._response_key(_Origin(me.user_id, channel, message_ts=ts))
            body = block_action_body(
                me.user_id,
                action_id,
                None if value is None else str(value),
                self.slack.response_url(key),
                channel,
                ts,
                message=message,
                **common,
            )
        elif kind == "ephemeral":
            eph = self._ephemeral(me.user_id, str(source.get("id", "")))
            key = self._response_key(_Origin(me.user_id, eph.channel, ephemeral=eph.id))
            body = block_action_body(
                me.user_id,
                action_id,
                None if value is None else str(value),
                self.slack.response_url(key),
                eph.channel,
                eph.ts,
                is_ephemeral=True,
                **common,
            )
        elif kind in ("home", "modal"):
            view = self.slack.home_view(me.user_id) if kind == "home" else self._modal_of(me.user_id)
            if view is None or (kind == "modal" and view.get("id") != source.get("view_id")):
                raise _Refused(409, "that view is no longer open")
            body = block_action_body(
                me.user_id, action_id, None if value is None else str(value), None, view=view, **common
            )
        else:
            raise _Refused(400, "source.kind must be message, ephemeral, home or modal")
        return self._outcome(*self._post(body))

    def submit(self, payload: Json) -> Json:
        """``{"user", "view_id"}``: submit the user's open modal (``view_submission``)."""
        me = self._person(payload.get("user"))
        with self._lock:
            view = self._modal_of(me.user_id)
        if view is None or view.get("id") != payload.get("view_id"):
            raise _Refused(409, "that modal is no longer open")
        view_id = str(view["id"])
        base_hash = str(view.get("hash", ""))
        status, answer = self._post(view_submission_body(me.user_id, view, team_id=self.slack.team_id))
        if status == 200:
            self._apply_submission_ack(view_id, base_hash, answer)
        return self._outcome(status, answer)

    def close_modal(self, payload: Json) -> Json:
        """``{"user", "view_id"}``: the user closes a modal (no ``view_closed`` is sent: nothing asks)."""
        me = self._person(payload.get("user"))
        with self._lock:
            view = self._modal_of(me.user_id)
            if view is not None and view.get("id") == payload.get("view_id"):
                self._closed.add(str(view["id"]))
        return {"ok": True}

    def open_home(self, payload: Json) -> Json:
        """``{"user"}``: the user opens the App Home tab (``app_home_opened``)."""
        me = self._person(payload.get("user"))
        event: Json = {
            "type": "app_home_opened",
            "user": me.user_id,
            "channel": self.dm_of(me.user_id),
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        view = self.slack.home_view(me.user_id)
        if view is not None:
            event["view"] = view
        body = event_body(
            event, team_id=self.slack.team_id, bot_user_id=self.slack.bot_user.id, api_app_id="A1"
        )
        return self._outcome(*self._post(body))

    def run_weekly(self, payload: Json) -> Json:
        """Run the weekly job (reminder DMs, then the admin summary) in the background."""
        job = self._weekly_job
        if job is None:
            raise _Refused(409, self._weekly_unavailable)
        with self._lock:
            if self._weekly.running:
                return {"ok": True, "detail": "already running"}
            self._weekly.running = True

        def run() -> None:
            try:
                text, error = job(), False
            except Exception as exc:
                log.warning("weekly job failed", exc_info=True)
                text, error = f"The weekly job failed: {type(exc).__name__}: {exc}", True
            with self._lock:
                self._weekly.running, self._weekly.last, self._weekly.error = False, text, error

        thread = threading.Thread(target=run, name="simulator-weekly", daemon=True)
        self._weekly.thread = thread
        thread.start()
        return {"ok": True, "detail": "started"}

    # ------------------------------------------------------------------ plumbing

    def _post(self, body: str) -> tuple[int, str]:
        """POST a signed request to the bot, as Slack does."""
        request = urllib.request.Request(
            self.bot_url, data=body.encode(), headers=headers_for(body, self._secret), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=_BOT_TIMEOUT) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, f"the bot did not answer ({exc})"

    @staticmethod
    def _outcome(status: int, answer: str) -> Json:
        if status == 200:
            return {"ok": True, "status": status}
        raise _Refused(502, f"the bot answered HTTP {status}: {answer[:200]}" if status else answer)

    def _escape_mentions(self, text: str) -> str:
        """What Slack sends an app with "escape channels, users, and links" on: ``&``, ``<``, ``>``
        escaped, then ``@alice`` becomes ``<@U…|alice>`` and ``#channel`` becomes ``<#C…|channel>``;
        unknown names stay as typed."""
        users = {u.name: u.id for p in self._people if (u := self.slack.user(p.user_id)) is not None}
        # Slack escapes what was typed first: a typed `&amp;` reaches the app as `&amp;amp;`.
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        def replace(match: re.Match[str]) -> str:
            sigil, name = match.group(1), match.group(2)
            if sigil == "@" and name in users:
                return f"<@{users[name]}|{name}>"
            if sigil == "#" and name == self._admin_channel_name:
                return f"<#{self._admin_channel}|{name}>"
            return match.group(0)

        return _TYPED_MENTION.sub(replace, text)

    def _channel_for(self, user_id: str, channel: Any) -> str:
        if channel == self._admin_channel or channel == "admin":
            return self._admin_channel
        return self.dm_of(user_id)

    def _name_of(self, user_id: str) -> str | None:
        user = self.slack.user(user_id)
        return user.name if user else None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _stamp(self) -> str:
        return f"{self.slack.now():.6f}"

    def _response_key(self, origin: _Origin) -> str:
        key = f"sim-{secrets.token_hex(8)}"
        with self._lock:
            self._origins[key] = origin
        return key

    def _trigger(self, user_id: str) -> str:
        trigger = f"{int(time.time())}.{next(self._ids)}.{secrets.token_hex(8)}"
        with self._lock:
            self._triggers[trigger] = user_id
        return trigger

    def _message_json(self, user_id: str, channel: str, ts: str) -> Json:
        if channel not in (self._admin_channel, self.dm_of(user_id)):
            raise _Refused(403, "that conversation is not visible to this user")
        msg = self.slack.message(channel, ts)
        if msg is None:
            raise _Refused(409, "that message no longer exists")
        with self._lock:
            text, blocks, _ = self._current(msg)
        out = msg.to_api(self.slack.bot_id)
        out["text"], out["blocks"] = text, blocks
        return out

    def _ephemeral(self, user_id: str, eph_id: str) -> _Ephemeral:
        with self._lock:
            for e in self._ephemerals:
                if e.id == eph_id and e.user == user_id:
                    return e
        raise _Refused(409, "that message is gone")

    def _ack_as_ephemeral(self, user_id: str, channel: str, answer: str) -> None:
        """A slash command acked with a body: Slack shows it to the user, like a response_url post."""
        try:
            body = json.loads(answer)
        except json.JSONDecodeError:
            body = {"text": answer}
        if isinstance(body, dict):
            with self._lock:
                self._ephemerals.append(
                    _Ephemeral(
                        self._new_id("e"),
                        user_id,
                        channel,
                        self._stamp(),
                        str(body.get("text", "")),
                        list(body.get("blocks") or []),
                    )
                )

    def _apply_response(self, key: str, body: Json, at: float) -> None:
        origin = self._origins.get(key)
        if origin is None:
            return
        text, blocks = str(body.get("text", "")), list(body.get("blocks") or [])
        target = next((e for e in self._ephemerals if e.id == origin.ephemeral), None)
        if body.get("delete_original"):
            if target is not None:
                self._ephemerals.remove(target)
            elif origin.message_ts:
                self._deleted.add((origin.channel, origin.message_ts))
            return
        if body.get("replace_original") in (True, "true"):
            if target is not None:
                target.text, target.blocks = text, blocks
                return
            if origin.message_ts:
                msg = self.slack.message(origin.channel, origin.message_ts)
                if msg is not None:
                    self._replaced[(origin.channel, origin.message_ts)] = _Replacement(
                        msg.edits, text, blocks
                    )
                    return
        if body.get("response_type") == "in_channel":
            msg = Message(origin.channel, f"{at:.6f}", text, blocks, user=self.slack.bot_user.id)
            self._extra.setdefault(origin.channel, []).append(msg)
            return
        self._ephemerals.append(
            _Ephemeral(self._new_id("e"), origin.user, origin.channel, f"{at:.6f}", text, blocks)
        )

    def _apply_submission_ack(self, view_id: str, base_hash: str, answer: str) -> None:
        """What Slack does with the ack of a ``view_submission``: close, update, or show errors."""
        try:
            body = json.loads(answer) if answer.strip() else {}
        except json.JSONDecodeError:
            body = {}
        action = body.get("response_action") if isinstance(body, dict) else None
        with self._lock:
            if action in ("update", "push") and isinstance(body.get("view"), dict):
                self._modal_acks[view_id] = (base_hash, body["view"])
            elif action == "errors" and isinstance(body.get("errors"), dict):
                current = self._modal_of_id(view_id)
                if current is not None:
                    self._modal_acks[view_id] = (base_hash, {**current, "errors": body["errors"]})
            else:  # an empty ack (or "clear") closes the modal
                self._closed.add(view_id)

    def _modal_of_id(self, view_id: str) -> Json | None:
        return next((v for v in self.slack.modals() if v.get("id") == view_id), None)


class _Refused(Exception):
    """A request the simulator answers with an error status and a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> WebResponse:
    return WebResponse(status, json.dumps({"ok": False, "error": message}).encode(), headers=_PAGE_HEADERS)


def _static(name: str, content_type: str) -> WebResponse:
    data = resources.files("bot.sandbox").joinpath("simulator_static", name).read_bytes()
    return WebResponse(200, data, content_type, _PAGE_HEADERS)


def _same_origin(request: WebRequest) -> bool:
    """JSON only (a cross-site form cannot send it without a CORS preflight) and no foreign Origin."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


def _file_json(info: Json) -> Json:
    name = str(info.get("name", "file"))
    return {
        "name": name,
        "title": str(info.get("title") or name),
        "url": urlsplit(str(info.get("url_private", ""))).path,
        "image": name.lower().endswith(".png"),
        "size": info.get("size", 0),
    }
