"""Reading Web API arguments as Slack does: form strings, JSON values, and the errors for bad ones."""

from __future__ import annotations

import json
from typing import Any

from bot.sandbox.slack_emulator.records import Args, SlackError, WebResponse


def arg_str(args: Args, key: str) -> str | None:
    """A parameter as a string (booleans as ``1`` / ``0``), or None when absent."""
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else str(value)


def arg_required(args: Args, key: str, error: str = "invalid_arguments") -> str:
    """A non-empty string parameter, else *error*."""
    value = arg_str(args, key)
    if not value:
        raise SlackError(error)
    return value


def arg_int(args: Args, key: str, default: int) -> int:
    """An integer parameter (*default* when absent)."""
    value = args.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None


def arg_flag(args: Args, key: str) -> bool:
    """A boolean parameter: ``true`` / ``1`` (form) or ``true`` (JSON)."""
    value = args.get(key)
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


def arg_json(args: Args, key: str) -> Any:
    """A parameter that form bodies carry as a JSON string and JSON bodies carry as a value."""
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SlackError("invalid_arguments") from None
    return value


def arg_list(args: Args, key: str) -> list[Any]:
    """A JSON list parameter (``blocks``, ``files``…); empty when absent."""
    value = arg_json(args, key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SlackError(f"invalid_{key}")
    return value


def split_csv(value: str | None) -> list[str]:
    """``a, b,,c`` → ``["a", "b", "c"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def json_reply(data: Args, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> WebResponse:
    """A JSON answer."""
    return WebResponse(status, json.dumps(data).encode("utf-8"), headers=headers)


def text_reply(text: str, status: int = 200) -> WebResponse:
    """A plain-text answer (upload and response_url endpoints answer text, as Slack's do)."""
    return WebResponse(status, text.encode("utf-8"), content_type="text/plain; charset=utf-8")
