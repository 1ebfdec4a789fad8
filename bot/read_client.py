"""Reads from one workspace over kept-alive `http.client` connections, with the SDK's rules but not its stack.

A fleet audit sends thousands of small GETs. Through the SDK's `ApiClient` each one passes `requests`
(session merge, the proxy environment read again, hooks, adapters) and urllib3 (URL parsing and
re-encoding, timeout and retry objects) before `http.client` sends it: at 1,000 workspaces that work, not
the waiting, was most of the audit's CPU. `ReadClient` hands the same GET to `http.client` directly, on
connections kept per workspace, and keeps what a user relies on from the SDK:

- the headers of the workspace's own `Config` (`authenticate()`: every unified-auth method) and its
  user agent;
- the SDK's retry loop (`databricks.sdk.retries.retried` with `ApiClient`'s own rule: 429 and 503 after
  `Retry-After`, connection errors and timeouts, within `retry_timeout_seconds`);
- the SDK's error parser, so a refusal raises the same error class with the same message;
- what `requests` takes from the environment (`Network.from_environment`, read once at start-up): the
  proxy for the host (`HTTPS_PROXY`, `NO_PROXY`, …) and the CA bundle (`REQUESTS_CA_BUNDLE`,
  `CURL_CA_BUNDLE`, else certifi's).

Writes never come here: they go out once through `bot.write_once`.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import ssl
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from bot.sdk_import import defer_sdk_package

defer_sdk_package()  # before the first databricks.sdk import: the client core, not every service

from databricks.sdk._base_client import _BaseClient  # noqa: E402
from databricks.sdk.errors.base import DatabricksError as SdkError  # noqa: E402
from databricks.sdk.errors.parser import _Parser  # noqa: E402
from databricks.sdk.retries import retried  # noqa: E402

Headers = Callable[[], Mapping[str, str]]

CONNECTIONS_PER_WORKSPACE = 16
"""Requests in flight to one workspace at most; more wait for a free connection (no burst on one host)."""

_PARSER = _Parser()
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Network:
    """The proxies and CA bundle `requests` would use, read from the environment once."""

    proxies: Mapping[str, str] = field(default_factory=dict)
    ca_bundle: str = requests.utils.DEFAULT_CA_BUNDLE_PATH

    @classmethod
    def from_environment(cls) -> Network:
        """As `requests` reads them: `*_PROXY` / `NO_PROXY` and `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`."""
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        return cls(
            proxies=urllib.request.getproxies(), ca_bundle=bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )

    def proxy_for(self, host_url: str) -> str | None:
        """The proxy URL for this host, unless `NO_PROXY` exempts it."""
        parts = urlsplit(host_url)
        proxy = self.proxies.get(parts.scheme) or self.proxies.get("all")
        # `proxy_bypass_environment` reads `NO_PROXY` from the given mapping (untyped in typeshed).
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if not proxy or bypass(parts.netloc, dict(self.proxies)):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"


class ReadClient:
    """GETs to one workspace: JSON or bytes back, the SDK's error classes raised (see the module)."""

    def __init__(
        self,
        host: str,
        headers: Headers,
        *,
        user_agent: str,
        http_timeout_seconds: float,
        retry_timeout_seconds: float,
        network: Network | None = None,
    ) -> None:
        self.host = host.rstrip("/")
        self._headers = headers
        self._user_agent = user_agent
        self._connections = _Connections(self.host, network or Network(), http_timeout_seconds)
        self._get = retried(
            timeout=timedelta(seconds=retry_timeout_seconds),
            is_retryable=_BaseClient._is_retryable,
        )(self._perform)

    def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON answer of `GET path?query` ({} for an empty body)."""
        body = self._get(path, query)
        return json.loads(body) if body else {}

    def get_bytes(self, path: str, query: Mapping[str, Any] | None = None) -> bytes:
        """The raw body of `GET path?query`."""
        body: bytes = self._get(path, query)
        return body

    def _perform(self, path: str, query: Mapping[str, Any] | None) -> bytes:
        target = path + ("?" + urlencode(query, doseq=True) if query else "")
        headers = {
            "Accept": "application/json",
            "User-Agent": self._user_agent,
            **self._headers(),
            **self._connections.extra_headers,
        }
        status, reason, answer_headers, body = self._connections.get(target, headers)
        if 200 <= status < 300:
            return body
        raise self._error(status, reason, answer_headers, body, self.host + target)

    @staticmethod
    def _error(
        status: int, reason: str, headers: http.client.HTTPMessage, body: bytes, url: str
    ) -> Exception:
        """The SDK's exception for a refused GET: what `ApiClient` raises for the same answer."""
        response = requests.Response()
        response.status_code, response.reason, response.url = status, reason, url
        response.headers = CaseInsensitiveDict(headers.items())
        response.raw = io.BytesIO(body)
        response.encoding = "utf-8"
        response.request = requests.Request("GET", url).prepare()
        error = _PARSER.get_api_error(response)
        if error is not None:
            return error
        # A redirect (e.g. to a login page when private link is misconfigured): an answer, not a glitch, so
        # the SDK's base error, which its retry rule does not retry.
        where = url.split("?")[0]
        return SdkError(f"unexpected HTTP {status} from {where} (redirected to {headers.get('Location')})")


class _Connections:
    """Kept-alive connections to one host (directly, or through its proxy), at most `size` in use at once."""

    def __init__(
        self, host: str, network: Network, timeout: float, size: int = CONNECTIONS_PER_WORKSPACE
    ) -> None:
        parts = urlsplit(host)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        self._timeout = timeout
        self._context = _tls_context(network.ca_bundle) if self._tls else None
        self._prefix = ""  # the absolute URL prefix of a request sent to an HTTP proxy
        self._proxy: tuple[str, int] | None = None
        self._proxy_auth: dict[str, str] = {}
        self.extra_headers: dict[str, str] = {}
        proxy = network.proxy_for(host)
        if proxy:
            p = urlsplit(proxy)
            self._proxy = (p.hostname or "", p.port or 80)
            if p.username:
                login = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                self._proxy_auth = {"Proxy-Authorization": "Basic " + base64.b64encode(login).decode()}
            if not self._tls:
                self._prefix = f"http://{parts.netloc}"
                self.extra_headers = self._proxy_auth
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)

    def get(self, target: str, headers: Mapping[str, str]) -> tuple[int, str, http.client.HTTPMessage, bytes]:
        """Send one GET and read its whole answer; transport failures raise `requests` exceptions (as the SDK
        sees them). A kept-alive connection the server closed in between is replaced once."""
        with self._slots:
            while True:
                conn, reused = self._take()
                keep = False
                try:
                    conn.request("GET", self._prefix + target, headers=dict(headers))
                    resp = conn.getresponse()
                    body = resp.read()
                    keep = not resp.will_close
                    return resp.status, resp.reason, resp.headers, body
                except _STALE as exc:
                    if not reused:
                        raise requests.ConnectionError(f"connection to {self._host} lost: {exc}") from exc
                except TimeoutError as exc:  # socket.timeout
                    if conn.sock is None:
                        raise requests.ConnectTimeout(f"connecting to {self._host} timed out") from exc
                    raise requests.ReadTimeout(
                        f"no answer from {self._host} within {self._timeout:g} s"
                    ) from exc
                except ssl.SSLError as exc:
                    raise requests.exceptions.SSLError(f"TLS with {self._host} failed: {exc}") from exc
                except (OSError, http.client.HTTPException) as exc:
                    raise requests.ConnectionError(f"cannot connect to {self._host}: {exc}") from exc
                finally:
                    self._give_back(conn, keep)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new(), False

    def _give_back(self, conn: http.client.HTTPConnection, keep: bool) -> None:
        if not keep:
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    def _new(self) -> http.client.HTTPConnection:
        host, port = self._proxy or (self._host, self._port)
        if not self._tls:
            return http.client.HTTPConnection(host, port, timeout=self._timeout)
        conn = http.client.HTTPSConnection(host, port, timeout=self._timeout, context=self._context)
        if self._proxy:
            conn.set_tunnel(self._host, self._port, headers=self._proxy_auth)
        return conn


def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    if os.path.isdir(ca_bundle):
        return ssl.create_default_context(capath=ca_bundle)
    return ssl.create_default_context(cafile=ca_bundle)
