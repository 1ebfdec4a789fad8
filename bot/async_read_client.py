"""Reads from one workspace on the running asyncio event loop: `bot.read_client.ReadClient`'s rules, no thread.

The fleet audit runs every GET of every workspace on one event loop: thousands in flight at once, none
holding a thread, so each GET must cost little CPU. `AsyncReadClient` is `ReadClient` over asyncio streams,
with the same `Config` headers, the same retry rule (an async copy of the SDK's `retried`), the same error
classes and messages, and the proxy and CA bundle of `Network`. It reads answers with its own small HTTP/1.1
parser, because `http.client` parses headers with the `email` package, the slow part of an answer there.
Connections are kept alive per host, with at most `connections` requests in flight to it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from random import random
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import requests

from bot.sdk_import import defer_sdk_package

defer_sdk_package()  # before the first databricks.sdk import: the client core, not every service

from databricks.sdk._base_client import _BaseClient  # noqa: E402

from bot.read_client import CONNECTIONS_PER_WORKSPACE, Headers, Network, ReadClient, _tls_context  # noqa: E402

logger = logging.getLogger(__name__)

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_Header = tuple[bytes, bytes]
Body = bytes | bytearray
"""An answer's body: a big one is filled in place (one copy in memory, not its pieces and their join)."""
_Answer = tuple[int, bytes, list[_Header], Body]
_STALE = (ConnectionResetError, BrokenPipeError)  # http.client.RemoteDisconnected is a ConnectionResetError
_FORBIDDEN_IN_TARGET = re.compile(r"[\x00-\x20\x7f]")  # as http.client refuses them
_PIECE = 1 << 20  # a body larger than this is read in pieces, each one proof that the answer is progressing


class _BadAnswer(Exception):
    """Not an HTTP/1.x answer."""


class _Stale(Exception):
    """A kept-alive connection the server had closed."""


# Transport failures (TimeoutError and ssl.SSLError are OSErrors; EOFError: asyncio.IncompleteReadError).
_BROKEN = (OSError, EOFError, ValueError, asyncio.LimitOverrunError, _BadAnswer)


class AsyncReadClient:
    """GETs to one workspace from coroutines: JSON or bytes back, the SDK's error classes raised."""

    def __init__(
        self,
        host: str,
        headers: Headers,
        *,
        user_agent: str,
        http_timeout_seconds: float,
        retry_timeout_seconds: float,
        network: Network | None = None,
        connections: int = CONNECTIONS_PER_WORKSPACE,
    ) -> None:
        self.host = host.rstrip("/")
        network = network or Network()
        parts = urlsplit(self.host)
        self._tls = parts.scheme == "https"
        self._hostname = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        self._headers = headers
        self._timeout = http_timeout_seconds
        self._retry_timeout = timedelta(seconds=retry_timeout_seconds)
        self._context = _tls_context(network.ca_bundle) if self._tls else None
        name = f"[{self._hostname}]" if ":" in self._hostname else self._hostname
        authority = name if self._port == (443 if self._tls else 80) else f"{name}:{self._port}"
        fixed = f"Host: {authority}\r\nAccept-Encoding: identity\r\n"
        fixed += f"Accept: application/json\r\nUser-Agent: {user_agent}\r\n"
        self._proxy: tuple[str, int] | None = None
        self._prefix = b""  # the absolute URL prefix of a request sent to an HTTP proxy
        self._tunnel: tuple[bytes, ssl.SSLContext] | None = None  # CONNECT, for an https host behind a proxy
        proxy = network.proxy_for(self.host)
        if proxy:
            p = urlsplit(proxy)
            self._proxy = (p.hostname or "", p.port or 80)
            login = ""
            if p.username:
                secret = base64.b64encode(f"{unquote(p.username)}:{unquote(p.password or '')}".encode())
                login = f"Proxy-Authorization: Basic {secret.decode()}\r\n"
            if self._context:
                where = f"{name}:{self._port}"
                connect = f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n{login}\r\n".encode()
                self._tunnel = (connect, self._context)
            else:
                self._prefix = f"http://{parts.netloc}".encode()
                fixed += login
        self._fixed = fixed.encode("latin-1")
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(connections)
        self._auth_lock = asyncio.Lock()
        self._auth_warm = False
        self._auth_seen: Mapping[str, str] | None = None
        self._auth_lines = b""

    async def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON answer of `GET path?query` ({} for an empty body)."""
        body = await self._get(path, query)
        return json.loads(body) if body else {}

    async def get_bytes(self, path: str, query: Mapping[str, Any] | None = None) -> Body:
        """The raw body of `GET path?query`."""
        return await self._get(path, query)

    async def aclose(self) -> None:
        """Close the idle kept-alive connections."""
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _get(self, path: str, query: Mapping[str, Any] | None) -> Body:
        """`databricks.sdk.retries.retried` with `ApiClient`'s rule, sleeping on the loop."""
        deadline = time.monotonic() + self._retry_timeout.total_seconds()
        attempt = 1
        last_err: Exception | None = None
        while time.monotonic() < deadline:
            try:
                return await self._perform(path, query)
            except Exception as err:
                last_err = err
                sleep: float = min(10, attempt)
                reason: str | None = "throttled by platform"
                retry_after = getattr(err, "retry_after_secs", None)
                if retry_after is not None:
                    sleep = retry_after
                else:
                    reason = _BaseClient._is_retryable(err)
                if reason is None:
                    raise
                logger.debug("Retrying: %s (sleeping ~%ss)", reason, sleep)
                await asyncio.sleep(sleep + random())
                attempt += 1
        raise TimeoutError(f"Timed out after {self._retry_timeout}") from last_err

    async def _perform(self, path: str, query: Mapping[str, Any] | None) -> Body:
        target = path + ("?" + urlencode(query, doseq=True) if query else "")
        if _FORBIDDEN_IN_TARGET.search(target):
            raise http.client.InvalidURL(f"URL can't contain control characters. {target!r}")
        request = b"".join(
            (b"GET ", self._prefix, target.encode("ascii"), b" HTTP/1.1\r\n", self._fixed, await self._auth())
        )
        status, reason, headers, body = await self._exchange(request + b"\r\n")
        if 200 <= status < 300:
            return body
        why = reason.decode("latin-1").strip()
        raise ReadClient._error(status, why, _message(headers), bytes(body), self.host + target)

    async def _auth(self) -> bytes:
        """The workspace's auth headers as request lines (their values never appear in an error)."""
        if self._auth_warm:
            headers = self._headers()
        else:
            async with self._auth_lock:
                # The first call may build the config and fetch an OAuth token (blocking I/O): off the loop,
                # once. Later ones return the SDK's cached token, so they run inline: a thread per request
                # would cost what this client saves.
                if self._auth_warm:
                    headers = self._headers()
                else:
                    headers = await asyncio.get_running_loop().run_in_executor(None, self._headers)
                    self._auth_warm = True
        if headers != self._auth_seen:
            lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            encoded = lines.encode("latin-1", "replace")
            one_line_each = lines.count("\n") == lines.count("\r") == len(headers)
            if not one_line_each or encoded.decode("latin-1") != lines:  # say where, never what
                raise ValueError(f"invalid auth header among {sorted(headers)}")
            self._auth_lines, self._auth_seen = encoded, dict(headers)
        return self._auth_lines

    async def _exchange(self, request: bytes) -> _Answer:
        """Send one GET and read its whole answer; transport failures raise `requests` exceptions (as the SDK
        sees them). A kept-alive connection the server closed in between is replaced once, at once."""
        async with self._slots:
            conn = self._take()
            if conn is not None:
                with contextlib.suppress(_Stale):
                    return await self._send(conn, request, reused=True)
            return await self._send(await self._connect(), request, reused=False)

    def _take(self) -> _Conn | None:
        while self._idle:  # LIFO: the most recently used is the least likely to have been closed
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def _send(self, conn: _Conn, request: bytes, *, reused: bool) -> _Answer:
        """The answer; `_Stale` when a reused connection turns out closed before answering."""
        reader, writer = conn
        keep = False
        try:
            # As `http.client`'s socket timeout: no progress for `timeout` seconds fails the GET, however long
            # a big answer (100,000 tokens) takes in all.
            async with asyncio.timeout(self._timeout) as deadline:
                loop = asyncio.get_running_loop()

                def progress() -> None:
                    deadline.reschedule(loop.time() + self._timeout)

                writer.write(request)
                await writer.drain()
                status, reason, headers, body, keep = await _read_answer(reader, progress)
            return status, reason, headers, body
        except _BROKEN as exc:
            if reused and isinstance(exc, _STALE):
                raise _Stale from exc
            raise self._failure(exc, connected=True) from exc
        finally:
            if keep:
                self._idle.append(conn)
            else:
                writer.close()

    async def _connect(self) -> _Conn:
        """A new connection to the host: directly, or through its proxy (tunnelled for https)."""
        host, port = self._proxy or (self._hostname, self._port)
        writer: asyncio.StreamWriter | None = None
        done = False
        try:
            async with asyncio.timeout(self._timeout):
                if self._tunnel is None:
                    hostname = self._hostname if self._context else None
                    reader, writer = await asyncio.open_connection(
                        host, port, ssl=self._context, server_hostname=hostname
                    )
                else:
                    connect, context = self._tunnel
                    reader, writer = await asyncio.open_connection(host, port)
                    writer.write(connect)
                    _, status, reason, _ = await _read_head(reader)
                    if status != 200:
                        why = reason.decode("latin-1").strip()
                        raise OSError(f"Tunnel connection failed: {status} {why}")
                    await writer.start_tls(context, server_hostname=self._hostname)
            done = True
            return reader, writer
        except _BROKEN as exc:
            raise self._failure(exc, connected=writer is not None) from exc
        finally:
            if writer is not None and not done:
                writer.close()

    def _failure(self, exc: BaseException, *, connected: bool) -> requests.RequestException:
        """What `ReadClient` raises for this transport failure, so the SDK's retry rule sees the same."""
        if isinstance(exc, TimeoutError):
            if not connected:  # as http.client: once the socket is connected, a timeout is a read timeout
                return requests.ConnectTimeout(f"connecting to {self._hostname} timed out")
            return requests.ReadTimeout(f"no answer from {self._hostname} within {self._timeout:g} s")
        if isinstance(exc, ssl.SSLError):
            return requests.exceptions.SSLError(f"TLS with {self._hostname} failed: {exc}")
        if isinstance(exc, _STALE):
            return requests.ConnectionError(f"connection to {self._hostname} lost: {exc}")
        return requests.ConnectionError(f"cannot connect to {self._hostname}: {exc}")


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, int, bytes, list[_Header]]:
    """Version, status, reason and headers of the next final answer (interim 1xx answers skipped)."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            raise http.client.RemoteDisconnected("Remote end closed connection without response") from exc
        status_line, *lines = head[:-4].split(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise _BadAnswer(f"bad status line {status_line[:60]!r}")
        if not code.startswith(b"1"):
            break
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise _BadAnswer(f"bad header line {line[:60]!r}")
        headers.append((name, value.strip()))
    return version, int(code), reason, headers


async def _read_answer(
    reader: asyncio.StreamReader, progress: Callable[[], None]
) -> tuple[int, bytes, list[_Header], Body, bool]:
    """Status, reason, headers, body, and whether the connection may carry another request; `progress()`
    after the head and after each piece of the body."""
    version, status, reason, headers = await _read_head(reader)
    progress()
    length = coding = connection = b""
    for name, value in headers:
        key = name.lower()
        if key == b"content-length":
            length = value
        elif key == b"transfer-encoding":
            coding = value.lower()
        elif key == b"connection":
            connection = value.lower()
    keep = b"close" not in connection if version == b"HTTP/1.1" else b"keep-alive" in connection
    body: Body
    if status in (204, 304):
        body = b""
    elif coding.endswith(b"chunked"):
        body = await _read_chunked(reader, progress)
    elif length and not coding:
        size = int(length)
        if size < 0:
            raise _BadAnswer(f"bad Content-Length {length[:20]!r}")
        body = await reader.readexactly(size) if size <= _PIECE else await _read_sized(reader, size, progress)
    else:  # delimited by the end of the connection
        body = bytearray()
        while piece := await reader.read(_PIECE):
            body += piece
            progress()
        keep = False
    return status, reason, headers, body, keep


async def _read_sized(reader: asyncio.StreamReader, size: int, progress: Callable[[], None]) -> bytearray:
    body = bytearray(size)
    view, filled = memoryview(body), 0
    while filled < size:
        piece = await reader.read(min(size - filled, _PIECE))
        if not piece:
            raise asyncio.IncompleteReadError(b"", size - filled)
        view[filled : filled + len(piece)] = piece
        filled += len(piece)
        progress()
    view.release()
    return body


async def _read_chunked(reader: asyncio.StreamReader, progress: Callable[[], None]) -> Body:
    body = bytearray()
    while size := int((await reader.readline()).split(b";", 1)[0], 16):  # ValueError at EOF
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != b"\r\n":
            raise _BadAnswer("a chunk is not followed by CRLF")
        body += memoryview(chunk)[:-2]
        progress()
    while (line := await reader.readline()) not in (b"\r\n", b"\n"):  # trailers, up to an empty line
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
    return body


def _message(headers: list[_Header]) -> http.client.HTTPMessage:
    """The answer's headers as `http.client` gives them to `ReadClient._error` (on the error path only)."""
    message = http.client.HTTPMessage()
    for name, value in headers:
        message[name.decode("latin-1")] = value.decode("latin-1")
    return message
