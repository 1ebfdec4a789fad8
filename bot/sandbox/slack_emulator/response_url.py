"""``response_url``: the URLs handed out with commands and actions, and what the app POSTs to them."""

from __future__ import annotations

import json

from bot.sandbox.slack_emulator.args import text_reply
from bot.sandbox.slack_emulator.faults import FaultsMixin
from bot.sandbox.slack_emulator.records import ResponsePost, WebResponse


class ResponseUrlMixin(FaultsMixin):
    """``POST /response/<key>`` records the JSON body under *key*."""

    def response_url(self, key: str | None = None) -> str:
        """A ``response_url`` on this emulator; POSTs to it are kept under *key*."""
        with self._lock:
            key = key or self._new_id("R").lower()
        return f"{self.base_url}/response/{key}"

    def response_posts(self, key: str | None = None) -> list[ResponsePost]:
        """Bodies POSTed to ``response_url``s (one key's, or all), oldest first."""
        with self._lock:
            return [p for p in self._response_posts if key is None or p.key == key]

    def _handle_response_url(self, key: str, data: bytes) -> WebResponse:
        self._delay("response_url")
        with self._lock:
            try:
                body = json.loads(data or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            if not isinstance(body, dict):
                self._record("response_url", {"key": key}, 400, "invalid_payload")
                return text_reply("invalid_payload", 400)
            faulted = self._text_fault("response_url", {"key": key, **body})
            if faulted is not None:
                return faulted
            self._response_posts.append(ResponsePost(key, body, self.now()))
            self._record("response_url", {"key": key, **body})
            return text_reply("ok")
