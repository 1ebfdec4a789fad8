"""The Slack side of `bot.weekly.chat.Chat`: the weekly job's four calls over a `WebClient`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.weekly.chat import ChatNoAnswer, ChatNotSent, ChatRefused


class SlackChat:
    """Slack Web API calls with their failures told apart; never retries on its own (the job paces)."""

    def __init__(self, client: WebClient) -> None:
        # The job handles 429s itself (to pace every worker and keep leases alive) and must not resend a
        # DM after an ambiguous connection error, which the SDK's default retry handler would.
        self.client = copy.copy(client)
        self.client.retry_handlers = []

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        """`chat.postMessage`, links not unfurled."""
        return _answer(
            lambda: (
                self.client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
                ).data
            )
        )

    def users_page(self, limit: int, cursor: str | None) -> dict[str, Any]:
        """`users.list`."""
        return _answer(lambda: self.client.users_list(limit=limit, cursor=cursor).data)

    def user_by_email(self, email: str) -> dict[str, Any]:
        """`users.lookupByEmail`."""
        return _answer(lambda: self.client.users_lookupByEmail(email=email).data)

    def upload_files(self, channel: str, thread_ts: str, files: list[dict[str, Any]]) -> None:
        """`files.upload` v2 into the thread."""
        _call(lambda: self.client.files_upload_v2(file_uploads=files, channel=channel, thread_ts=thread_ts))


def _answer(call: Callable[[], Any]) -> dict[str, Any]:
    """The JSON answer of a call, as a dict."""
    answer = _call(call)
    return dict(answer) if isinstance(answer, dict) else {}


def _call(call: Callable[[], Any]) -> Any:
    try:
        answer = call()
    except SlackApiError as exc:
        raise ChatRefused(_error(exc), _retry_after(exc)) from None
    except SlackRequestError as exc:  # refused by the SDK before anything was sent
        raise ChatNotSent(f"invalid request ({exc})") from None
    except Exception as exc:
        if _connection_refused(exc):
            raise ChatNotSent("cannot connect to Slack") from None
        raise ChatNoAnswer(type(exc).__name__) from None
    return answer


def _error(exc: SlackApiError) -> str:
    """Slack's error code, such as `not_in_channel`, or the HTTP status without one."""
    return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")


def _retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asks us to wait for a 429 (1 when unstated), or None for any other error."""
    response = exc.response
    if response.status_code != 429 and response.get("error") not in ("ratelimited", "rate_limited"):
        return None
    headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


def _connection_refused(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    return isinstance(exc, ConnectionRefusedError) or isinstance(reason, ConnectionRefusedError)
