"""Sign requests the way Slack does, and build the bodies Slack sends to an app.

Used by the tests and by the ``patbot demo`` simulator to drive the real Bolt app through
``POST /slack/events`` with genuinely signed requests (Slack's v0 signing scheme).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "block_action_body",
    "event_body",
    "headers_for",
    "sign",
    "slash_command_body",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

_VERSION = "v0"
_DEFAULT_VERIFICATION_TOKEN = "verification-token"  # the legacy field Slack still includes
_counter = itertools.count(1)


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with *body*: ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``.

    The signature is ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` keyed with *secret*.
    *timestamp* defaults to now (Unix seconds); pass an old one to produce a stale request.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = f"{_VERSION}:{ts}:".encode() + raw
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"{_VERSION}={digest}"}


def headers_for(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """:func:`sign` plus the ``Content-Type`` Slack uses for this kind of body (JSON or form)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    content_type = JSON_CONTENT_TYPE if text.lstrip().startswith("{") else FORM_CONTENT_TYPE
    return {"Content-Type": content_type, **sign(body, secret, timestamp)}


def _trigger_id() -> str:
    return f"{int(time.time())}.{next(_counter)}.{secrets.token_hex(8)}"


def slash_command_body(
    command: str,
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    team_id: str = "T1",
    trigger_id: str | None = None,
    *,
    user_name: str | None = None,
    channel_name: str = "general",
    team_domain: str = "emulated",
    api_app_id: str = "A1",
    token: str = _DEFAULT_VERIFICATION_TOKEN,
) -> str:
    """A slash-command request body, form-encoded with the fields (and order) Slack sends."""
    fields = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command if command.startswith("/") else f"/{command}",
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }
    return urlencode(fields)


def block_action_body(
    user_id: str,
    action_id: str,
    value: str | None,
    response_url: str | None,
    channel_id: str | None = None,
    message_ts: str | None = None,
    *,
    message: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    is_ephemeral: bool = False,
    block_id: str = "actions",
    action_type: str = "button",
    action_text: str | None = None,
    team_id: str = "T1",
    team_domain: str = "emulated",
    user_name: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = "A1",
    token: str = _DEFAULT_VERIFICATION_TOKEN,
) -> str:
    """A ``block_actions`` interaction body: form-encoded ``payload=<json>``, as Slack posts it.

    With *channel_id* and *message_ts* the action comes from a message (container type
    ``message``; *message* defaults to a minimal message with that ``ts`` unless *is_ephemeral*,
    for which Slack sends no message). With *view* it comes from a view such as the App Home tab
    (container type ``view``). *response_url* is ``None`` for view actions, as in Slack.
    """
    action: dict[str, Any] = {
        "type": action_type,
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": action_text or action_id, "emoji": True},
        "action_ts": f"{time.time():.6f}",
    }
    if value is not None:
        action["value"] = value
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": user_name or user_id.lower(),
            "name": user_name or user_id.lower(),
            "team_id": team_id,
        },
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": {}},
        "actions": [action],
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id", "V1")}
        payload["view"] = view
    elif channel_id is not None and message_ts is not None:
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        if not is_ephemeral:
            payload["message"] = message or {"type": "message", "ts": message_ts, "text": "", "blocks": []}
    if channel_id is not None:
        payload["channel"] = {
            "id": channel_id,
            "name": "directmessage" if channel_id[:1] == "D" else "channel",
        }
    if response_url is not None:
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)})


def event_body(
    event: dict[str, Any],
    *,
    team_id: str = "T1",
    api_app_id: str = "A1",
    event_id: str | None = None,
    event_time: int | None = None,
    bot_user_id: str | None = None,
    token: str = _DEFAULT_VERIFICATION_TOKEN,
) -> str:
    """An Events API ``event_callback`` envelope (JSON) around *event*.

    With *bot_user_id* the envelope carries ``authorizations`` naming the app's bot user.
    """
    envelope: dict[str, Any] = {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_counter):08d}",
        "event_time": int(time.time()) if event_time is None else event_time,
        "is_ext_shared_channel": False,
    }
    if bot_user_id is not None:
        envelope["authorizations"] = [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ]
    return json.dumps(envelope)


def view_submission_body(
    user_id: str,
    view: dict[str, Any],
    *,
    team_id: str = "T1",
    api_app_id: str = "A1",
    token: str = _DEFAULT_VERIFICATION_TOKEN,
) -> str:
    """A ``view_submission`` interaction body for a modal (form-encoded ``payload=<json>``)."""
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "emulated"},
        "user": {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": _trigger_id(),
        "view": {"state": {"values": {}}, **view},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})
