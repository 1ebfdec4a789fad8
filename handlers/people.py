"""The Slack side of `bot.ports.People`: e-mails of users, approvers (users and user groups), DM channels. Cached."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import GovernanceError

log = logging.getLogger(__name__)


class SlackUserUnknown(GovernanceError):
    """The Slack user cannot be found, or has no e-mail address patbot may read."""


class _TtlCache:
    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._data: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> object | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < self._clock():
                return None
            return hit[1]

    def put(self, key: str, value: object) -> None:
        with self._lock:
            self._data[key] = (self._clock() + self._ttl, value)


class SlackDirectory:
    """Slack identities behind one `WebClient`, with small in-process caches."""

    def __init__(
        self,
        client: WebClient,
        approvers: Iterable[str],
        *,
        user_ttl: float = 3600,
        group_ttl: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        approver_ids = list(approvers)
        self._approver_users = {a for a in approver_ids if not a.startswith("S")}
        self._approver_groups = [a for a in approver_ids if a.startswith("S")]
        self._users = _TtlCache(user_ttl, clock)
        self._groups = _TtlCache(group_ttl, clock)
        self._dms = _TtlCache(24 * 3600, clock)

    def email_of(self, user_id: str) -> str:
        """The user's e-mail address (lower-cased), or `SlackUserUnknown` with a clear message."""
        cached = self._users.get(user_id)
        if isinstance(cached, str):
            return cached
        try:
            user = self.client.users_info(user=user_id)["user"]
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            raise SlackUserUnknown(f"I could not look up <@{user_id}> in Slack ({error}).") from None
        email = (user.get("profile") or {}).get("email")
        if user.get("deleted") or user.get("is_bot"):
            raise SlackUserUnknown(f"<@{user_id}> is not an active person in Slack.")
        if not email:
            raise SlackUserUnknown(
                "I cannot see an e-mail address for you in Slack, so I cannot match you to a Databricks "
                "user. Ask an admin to check the app's users:read.email scope."
            )
        email = str(email).lower()
        self._users.put(user_id, email)
        return email

    def is_approver(self, user_id: str) -> bool:
        """Named directly in PATBOT_APPROVERS, or a member of a user group named there."""
        if user_id in self._approver_users:
            return True
        return any(user_id in self._group_members(group) for group in self._approver_groups)

    def _group_members(self, group_id: str) -> frozenset[str]:
        cached = self._groups.get(group_id)
        if isinstance(cached, frozenset):
            return cached
        try:
            members = frozenset(self.client.usergroups_users_list(usergroup=group_id).get("users") or [])
        except SlackApiError as exc:
            log.warning("cannot list user group %s: %s", group_id, exc.response.get("error"))
            return frozenset()
        self._groups.put(group_id, members)
        return members

    def user_for_email(self, email: str) -> str | None:
        """The Slack user with this e-mail; None when not in Slack or Slack cannot say."""
        try:
            return str(self.client.users_lookupByEmail(email=email)["user"]["id"])
        except Exception as exc:  # not in Slack, or Slack unreachable: the caller carries on without them
            log.info("no Slack user for an owner e-mail (%s)", type(exc).__name__)
            return None

    def dm_channel(self, user_id: str) -> str:
        """The bot's DM channel with a user."""
        cached = self._dms.get(user_id)
        if isinstance(cached, str):
            return cached
        channel = str(self.client.conversations_open(users=user_id)["channel"]["id"])
        self._dms.put(user_id, channel)
        return channel
