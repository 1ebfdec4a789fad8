"""Who owners are in Slack: e-mail → Slack user ID, cached in Redis."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from bot.weekly.chat import Chat, ChatRefused
from bot.weekly.slack_calls import CallTally, SlackUnavailable, call_slack

log = logging.getLogger(__name__)

DIRECTORY_TTL_SECONDS = 24 * 3600


class SlackOwners:
    """E-mail → Slack user ID: one ``users.list`` walk cached in Redis for a day, then ``lookupByEmail``.

    Deleted users and bots are left out: an owner who is one of them is "not in Slack".
    """

    CACHE_KEY = "patbot:slack:users-by-email"
    LOOKUPS_KEY = "patbot:slack:email-lookups"  # hash: e-mail -> user ID, or "-" for a miss

    def __init__(
        self,
        chat: Chat,
        store: redis.Redis[Any],
        *,
        ttl_seconds: int = DIRECTORY_TTL_SECONDS,
        page_size: int = 200,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chat = chat
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.page_size = page_size
        self.sleep = sleep
        self.calls = CallTally()

    def members(self) -> dict[str, str]:
        """Every active person's e-mail (lower-cased) and user ID, from the cache or one walk."""
        raw = self.store.get(self.CACHE_KEY)
        if raw:
            try:
                cached = json.loads(raw)
                if isinstance(cached, dict):
                    return {str(k): str(v) for k, v in cached.items()}
            except ValueError:
                log.warning("ignoring an unreadable Slack directory cache")
        members = self._walk()
        self.store.set(self.CACHE_KEY, json.dumps(members), ex=self.ttl_seconds)
        return members

    def _walk(self) -> dict[str, str]:
        members: dict[str, str] = {}
        cursor = ""
        while True:
            try:
                page = call_slack(
                    functools.partial(self.chat.users_page, self.page_size, cursor or None),
                    "users.list",
                    sleep=self.sleep,
                    calls=self.calls,
                )
            except ChatRefused as exc:
                raise SlackUnavailable(
                    f"Slack answered {exc.error} to users.list; check SLACK_BOT_TOKEN and the "
                    "users:read and users:read.email scopes"
                ) from None
            for member in page.get("members") or []:
                if member.get("deleted") or member.get("is_bot") or member.get("id") == "USLACKBOT":
                    continue
                email = (member.get("profile") or {}).get("email")
                if email and member.get("id"):
                    members[str(email).strip().lower()] = str(member["id"])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return members

    def lookup(self, email: str) -> str | None:
        """The active person with this e-mail through ``users.lookupByEmail``, or None."""
        try:
            found = call_slack(
                lambda: self.chat.user_by_email(email),
                "users.lookupByEmail",
                sleep=self.sleep,
                calls=self.calls,
            )
        except ChatRefused as exc:
            if exc.error == "users_not_found":
                return None
            raise SlackUnavailable(
                f"Slack answered {exc.error} to users.lookupByEmail; check the users:read.email scope"
            ) from None
        user = found.get("user") or {}
        if user.get("deleted") or user.get("is_bot") or not user.get("id"):
            return None
        return str(user["id"])

    def resolve(self, emails: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """(e-mail → user ID for those in Slack, sorted e-mails of those who are not)."""
        wanted = sorted({e.strip().lower() for e in emails})
        members = self.members()
        found = {e: members[e] for e in wanted if e in members}
        misses = [e for e in wanted if e not in found]
        if misses:
            remembered = self.store.hmget(self.LOOKUPS_KEY, misses)
            learned: dict[str | bytes, str] = {}
            for email, known in zip(misses, remembered, strict=True):
                if known is None:
                    user_id = self.lookup(email)
                    learned[email] = user_id or "-"
                    known = learned[email]
                if known != "-":
                    found[email] = known
            if learned:
                self.store.hset(self.LOOKUPS_KEY, mapping=learned)
                if self.store.ttl(self.LOOKUPS_KEY) < 0:
                    self.store.expire(self.LOOKUPS_KEY, self.ttl_seconds)
        return found, [e for e in wanted if e not in found]
