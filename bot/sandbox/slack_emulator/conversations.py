"""Channels and DMs: registering channels and ``conversations.open``."""

from __future__ import annotations

from bot.sandbox.slack_emulator.args import arg_flag, arg_str, split_csv
from bot.sandbox.slack_emulator.records import Args, MethodHandler, SlackError
from bot.sandbox.slack_emulator.state import EmulatorState


class ConversationsMixin(EmulatorState):
    """Public channels (``C…``) and the bot's DMs (``D…``) with members."""

    def _conversations_methods(self) -> dict[str, MethodHandler]:
        return {"conversations.open": self._conversations_open}

    def add_channel(self, channel_id: str | None = None, name: str = "channel") -> str:
        """Register a public channel (only matters with ``strict_channels``); returns its id."""
        with self._lock:
            cid = channel_id or self._new_id("C")
            self._channels[cid] = name
            return cid

    def dm_channel_of(self, user_id: str) -> str | None:
        """The ``D…`` channel opened with *user_id*, if one was."""
        with self._lock:
            return self._dm_of.get(user_id)

    def _conversations_open(self, args: Args) -> Args:
        channel = arg_str(args, "channel")
        user_ids = split_csv(arg_str(args, "users"))
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
        if arg_flag(args, "return_im"):
            info.update({"created": int(self.now()), "is_im": True, "is_org_shared": False, "user": user.id})
        return {"no_op": existed, "already_open": existed, "channel": info}
