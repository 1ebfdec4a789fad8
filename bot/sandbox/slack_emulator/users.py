"""Members and user groups: seeding them, and ``auth.test``, ``users.*``, ``usergroups.users.list``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from bot.sandbox.slack_emulator.args import arg_int, arg_required, arg_str
from bot.sandbox.slack_emulator.records import Args, MethodHandler, SlackError, User, UserGroup
from bot.sandbox.slack_emulator.state import EmulatorState

_MAX_PAGE = 1000


class UsersMixin(EmulatorState):
    """The workspace's people (``U…``) and groups (``S…``)."""

    def _users_methods(self) -> dict[str, MethodHandler]:
        return {
            "auth.test": self._auth_test,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.users.list": self._usergroups_users_list,
        }

    # ----------------------------------------------------------------- seeding

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

    def user(self, user_id: str) -> User | None:
        """The member with this id, if any."""
        with self._lock:
            return self._users.get(user_id)

    # ----------------------------------------------------------------- methods

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
        return {"user": self._active_user(arg_str(args, "user")).to_api()}

    def _users_list(self, args: Args) -> Args:
        limit = arg_int(args, "limit", 0)
        limit = _MAX_PAGE if limit <= 0 else min(limit, _MAX_PAGE)
        start = 0
        cursor = arg_str(args, "cursor")
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
        email = arg_required(args, "email", "users_not_found").lower()
        user = self._users.get(self._by_email.get(email, ""))
        if user is None or user.deleted:  # Slack hides deactivated users here
            raise SlackError("users_not_found")
        return {"user": user.to_api()}

    def _usergroups_users_list(self, args: Args) -> Args:
        group = self._groups.get(arg_str(args, "usergroup") or "")
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group.users)}
