"""Writes to Databricks that go out exactly once, and the reads that find out what a lost write did.

The SDK's `ApiClient` retries 429 and 503 after `Retry-After` (immediately when it says 0) and connection
errors, and its retry loop cannot be switched off without reaching into its internals. A write is therefore
sent here as one plain `requests` call, authenticated by the workspace client's own `Config` (so every
unified-auth method still works), and its error answers are parsed by the SDK's own error parser (so the
usual error classes and messages come out).

Only an answer that says the request was not processed (429) is sent again, after `Retry-After`, a bounded
number of times. A timeout, a dropped connection or a 5xx means the outcome is unknown: `AnswerLost` is
raised and the caller reads the state back instead of sending the write again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from databricks.sdk import errors as sdk_errors
from databricks.sdk.config import Config
from databricks.sdk.errors.base import DatabricksError as SdkError
from databricks.sdk.errors.parser import _Parser
from urllib3.exceptions import NewConnectionError

RATE_LIMITED_ATTEMPTS = 3
"""How many times a write answered 429 ("not processed, slow down") is sent in all."""
MAX_RETRY_AFTER_SECONDS = 10.0
READ_ATTEMPTS = 3
"""Reads are safe to repeat: a read-back tries this many times before giving up."""

_PARSER = _Parser()
Sleep = Callable[[float], None]


class AnswerLost(Exception):
    """The write may have reached Databricks, but its answer did not come back; `why` says how it was lost."""

    def __init__(self, why: str, *, timed_out: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.timed_out = timed_out
        """The request may still be in flight on the server side."""


class ReadBackFailed(Exception):
    """Reading the state back after a lost answer failed too; `why` says how."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def send_once(
    config: Config,
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, str] | None = None,
    sleep: Sleep = time.sleep,
) -> dict[str, Any]:
    """Send one write and return its JSON answer.

    Raises the SDK's error class for a definite refusal (4xx), `requests.ConnectionError` when the request
    never left (connection refused, DNS), and `AnswerLost` when it may have been processed.
    """
    for attempt in range(1, RATE_LIMITED_ATTEMPTS + 1):
        try:
            resp = _request(config, method, path, body=body, query=query)
        except requests.ConnectTimeout:
            raise  # never connected, so never sent
        except requests.Timeout as exc:
            raise AnswerLost(f"no answer within {_timeout(config):g} s", timed_out=True) from exc
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise
            raise AnswerLost("the connection dropped before Databricks answered") from exc
        if resp.status_code == 429 and attempt < RATE_LIMITED_ATTEMPTS:
            sleep(_retry_after(resp))
            continue
        if resp.status_code >= 500 and resp.status_code != 501:
            raise AnswerLost(f"Databricks answered HTTP {resp.status_code}")
        return _json_or_raise(resp)
    raise AssertionError("unreachable")  # pragma: no cover


def read_json(
    config: Config, path: str, *, query: Mapping[str, str] | None = None, sleep: Sleep = time.sleep
) -> dict[str, Any]:
    """One GET, repeated on 429, 5xx and connection errors; `ReadBackFailed` when it never succeeds.

    A 404 raises the SDK's `NotFound`, which callers read as "it does not exist".
    """
    why = ""
    for attempt in range(READ_ATTEMPTS):
        if attempt:
            sleep(min(0.5 * attempt, 2.0))
        try:
            resp = _request(config, "GET", path, query=query)
        except requests.RequestException as exc:
            why = "timed out" if isinstance(exc, requests.Timeout) else "cannot connect"
            continue
        if resp.status_code == 429 or resp.status_code >= 500:
            why = f"HTTP {resp.status_code}"
            if resp.status_code == 429:
                sleep(_retry_after(resp))
            continue
        try:
            return _json_or_raise(resp)
        except sdk_errors.NotFound:
            raise
        except SdkError as exc:
            raise ReadBackFailed(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from exc
    raise ReadBackFailed(why)


# ------------------------------------------------------------------------------------------ read-backs

TOKENS_PATH = "/api/2.0/token-management/tokens"


def find_marked_token(config: Config, marker: str, sleep: Sleep = time.sleep) -> dict[str, Any] | None:
    """The `TokenInfo` JSON of the token patbot created whose comment carries `marker`, if any.

    On-behalf-of tokens are created by patbot's own identity, so the listing is narrowed to tokens created
    by it (`created_by_id` of `/Me`).
    """
    try:
        me = read_json(config, "/api/2.0/preview/scim/v2/Me", sleep=sleep)
        listing = read_json(config, TOKENS_PATH, query={"created_by_id": str(me["id"])}, sleep=sleep)
    except (sdk_errors.NotFound, KeyError) as exc:
        raise ReadBackFailed(f"could not list the tokens patbot created ({type(exc).__name__})") from exc
    for info in listing.get("token_infos") or []:
        if marker in str(info.get("comment") or ""):
            return dict(info)
    return None


def token_exists(config: Config, token_id: str, sleep: Sleep = time.sleep) -> bool:
    """Whether the token is still there (404: gone)."""
    try:
        read_json(config, f"{TOKENS_PATH}/{token_id}", sleep=sleep)
    except sdk_errors.NotFound:
        return False
    return True


def conf_value(config: Config, key: str, sleep: Sleep = time.sleep) -> str | None:
    """The current value of one workspace-conf key."""
    try:
        conf = read_json(config, "/api/2.0/workspace-conf", query={"keys": key}, sleep=sleep)
    except sdk_errors.NotFound as exc:
        raise ReadBackFailed("the workspace settings could not be read") from exc
    value = conf.get(key)
    return None if value is None else str(value)


def secret_stamps(config: Config, scope: str, sleep: Sleep = time.sleep) -> dict[str, int]:
    """Every key of a secret scope with its `last_updated_timestamp` (epoch ms)."""
    try:
        listing = read_json(config, "/api/2.0/secrets/list", query={"scope": scope}, sleep=sleep)
    except sdk_errors.NotFound as exc:
        raise ReadBackFailed(f"secret scope {scope} could not be listed") from exc
    return {
        str(item["key"]): int(item.get("last_updated_timestamp") or 0)
        for item in listing.get("secrets") or []
        if item.get("key")
    }


# ------------------------------------------------------------------------------------------- internals


def _timeout(config: Config) -> float:
    return float(config.http_timeout_seconds or 60)


def _request(
    config: Config,
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    query: Mapping[str, str] | None = None,
) -> requests.Response:
    headers = {"Accept": "application/json", "User-Agent": config.user_agent, **config.authenticate()}
    return requests.request(
        method,
        f"{str(config.host).rstrip('/')}{path}",
        params=dict(query) if query else None,
        json=dict(body) if body is not None else None,
        headers=headers,
        timeout=_timeout(config),
        allow_redirects=False,
    )


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Refused or unresolvable: the request never left this process."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _retry_after(resp: requests.Response) -> float:
    raw = resp.headers.get("Retry-After", "")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _json_or_raise(resp: requests.Response) -> dict[str, Any]:
    error = _PARSER.get_api_error(resp)
    if error is not None:
        raise error
    if not resp.content:
        return {}
    data = resp.json()
    return dict(data) if isinstance(data, dict) else {"value": data}
