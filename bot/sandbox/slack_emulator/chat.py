"""Messages: ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral`` and reading them back."""

from __future__ import annotations

from dataclasses import replace

from bot.sandbox.slack_emulator.args import arg_list, arg_str
from bot.sandbox.slack_emulator.records import Args, Ephemeral, Message, MethodHandler, SlackError
from bot.sandbox.slack_emulator.state import EmulatorState


class ChatMixin(EmulatorState):
    """The bot's messages in channels and DMs, and ephemeral messages."""

    def _chat_methods(self) -> dict[str, MethodHandler]:
        return {
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
        }

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

    def _chat_post_message(self, args: Args) -> Args:
        channel = self._channel(arg_str(args, "channel"), allow_user=True)
        text = arg_str(args, "text") or ""
        blocks, attachments = arg_list(args, "blocks"), arg_list(args, "attachments")
        if not (text or blocks or attachments):
            raise SlackError("no_text")
        thread_ts = arg_str(args, "thread_ts")
        msg = Message(channel, self._ts(), text, blocks, attachments, thread_ts, user=self.bot_user.id)
        self._messages.setdefault(channel, {})[msg.ts] = msg
        return {"channel": channel, "ts": msg.ts, "message": msg.to_api(self.bot_id)}

    def _chat_update(self, args: Args) -> Args:
        channel = arg_str(args, "channel") or ""
        ts = arg_str(args, "ts") or ""
        msg = self._messages.get(channel, {}).get(ts)
        if msg is None:
            raise SlackError("message_not_found")
        if args.get("text") is not None:
            msg.text = arg_str(args, "text") or ""
        if args.get("blocks") is not None:
            msg.blocks = arg_list(args, "blocks")
        if args.get("attachments") is not None:
            msg.attachments = arg_list(args, "attachments")
        if not (msg.text or msg.blocks or msg.attachments):
            raise SlackError("no_text")
        msg.edits += 1
        return {"channel": channel, "ts": ts, "text": msg.text, "message": msg.to_api(self.bot_id)}

    def _chat_post_ephemeral(self, args: Args) -> Args:
        user = self._active_user(arg_str(args, "user"))
        if user.deleted:
            raise SlackError("user_not_found")
        channel = self._channel(arg_str(args, "channel"), allow_user=True)
        text = arg_str(args, "text") or ""
        blocks, attachments = arg_list(args, "blocks"), arg_list(args, "attachments")
        if not (text or blocks or attachments):
            raise SlackError("no_text")
        ts = self._ts()
        self._ephemerals.append(Ephemeral(channel, user.id, ts, text, blocks))
        return {"message_ts": ts}
