"""What the weekly job needs from a chat platform, and how its failures are told apart.

The job paces itself and decides what a failure means (wait and retry, give up, or "in doubt"), so the
port reports each failure as one of three kinds; `handlers/weekly_chat.py` implements it over Slack.
"""

from __future__ import annotations

from typing import Any, Protocol


class ChatRefused(Exception):
    """The platform answered, and not with ok: `error` is its code (e.g. `not_in_channel`); a rate
    limit carries `retry_after` (seconds), anything else None."""

    def __init__(self, error: str, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


class ChatNotSent(Exception):
    """The request never reached the platform (refused before sending, connection refused)."""


class ChatNoAnswer(Exception):
    """The request left but no answer came back (timeout, dropped connection): it may have been done."""


class Chat(Protocol):
    """The four calls the weekly job makes; each raises one of the three errors above."""

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        """Post a message (a user ID posts to the app's DM with them); the answer has `channel` and `ts`."""
        ...

    def users_page(self, limit: int, cursor: str | None) -> dict[str, Any]:
        """One page of the member list: `members`, and `response_metadata.next_cursor`."""
        ...

    def user_by_email(self, email: str) -> dict[str, Any]:
        """The member with this e-mail (`user`); `ChatRefused("users_not_found")` when none."""
        ...

    def upload_files(self, channel: str, thread_ts: str, files: list[dict[str, Any]]) -> None:
        """Attach files (`filename`, `content`, `title`) in a message's thread."""
        ...
