"""Slack's Socket Mode endpoint, emulated: a minimal RFC 6455 WebSocket server (stdlib only).

:class:`~bot.sandbox.slack_emulator.SlackEmulator` hands out its URLs from ``apps.connections.open``
(``ws://127.0.0.1:<port>/link/?ticket=…&app_id=…``; each ticket connects once). On connect the
server sends Slack's ``hello``; :meth:`SocketModeServer.send` pushes an envelope
``{"envelope_id", "type", "payload", "accepts_response_payload"}`` (``events_api`` ones also carry
``retry_attempt`` / ``retry_reason``) to the newest connection, and every ``{"envelope_id", "payload"?}``
the app sends back is recorded as a :class:`SocketAck`. Pings are answered with pongs, a
``disconnect`` message can be pushed (Slack's "please reconnect"), connections can be dropped.

Only what Slack's server side needs: no extensions, no subprotocols, no TLS (``ws://``); frames to
the client are unmasked, frames from the client must be masked. Works with ``slack_sdk``'s builtin
client (the default of ``slack_bolt``'s ``SocketModeHandler``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import logging
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["SocketAck", "SocketEnvelope", "SocketModeServer"]

log = logging.getLogger(__name__)

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONTINUATION, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_MAX_HANDSHAKE = 16 * 1024
_MAX_MESSAGE = 16 * 1024 * 1024
_POLL = 0.1  # seconds between checks of the stop flag while waiting on a socket
# Slack sets accepts_response_payload for these (a reply can carry a message, errors or options).
_ACCEPTS_RESPONSE = {"slash_commands": True, "events_api": False}
_INTERACTIVE_ACCEPTING = {"view_submission", "block_suggestion"}


@dataclass(frozen=True)
class SocketAck:
    """A message the app sent back over the socket for an envelope (its acknowledgement).

    ``payload`` is the optional response payload; ``time`` is on the server's clock.
    """

    envelope_id: str
    payload: dict[str, Any] | None
    time: float
    connection: str


@dataclass(frozen=True)
class SocketEnvelope:
    """An envelope pushed to the app."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    time: float
    connection: str


class _Closed(Exception):
    """The peer went away, or the server is stopping."""


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Connection:
    """One accepted WebSocket: writes are serialised; a daemon thread reads."""

    def __init__(self, conn_id: str, sock: socket.socket) -> None:
        self.id = conn_id
        self.sock = sock
        self.open = True
        self.close_sent = False
        self._send_lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def send_frame(self, opcode: int, data: bytes = b"") -> None:
        """Send one unmasked, final frame (the whole frame in one ``sendall``)."""
        length = len(data)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        with self._send_lock:
            if opcode == _OP_CLOSE:
                if self.close_sent:
                    return
                self.close_sent = True
            elif self.close_sent:
                raise _Closed
            try:
                self.sock.sendall(header + data)
            except OSError:
                raise _Closed from None

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_frame(_OP_TEXT, json.dumps(message).encode("utf-8"))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(_Closed):
            self.send_frame(_OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120])

    def shutdown(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def _accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode("ascii")).digest()).decode("ascii")


class SocketModeServer:
    """A Socket Mode WebSocket endpoint on ``host`` (port 0: a free one), serving in daemon threads.

    Use as a context manager, or call :meth:`start` and :meth:`close`. ``clock`` stamps the
    recorded envelopes and acks (the Slack emulator passes its emulated clock).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        app_id: str = "A1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_id = app_id
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._tickets: set[str] = set()
        self._connections: dict[str, _Connection] = {}  # open ones, oldest first
        self._threads: list[threading.Thread] = []
        self._opened = 0  # connections that completed the handshake, ever
        self._numbers = itertools.count(1)
        self._envelopes: list[SocketEnvelope] = []
        self._acks: list[SocketAck] = []
        self._messages: list[Any] = []  # every text message received (parsed JSON, or the raw text)
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(_POLL)
        self._accept_thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> SocketModeServer:
        """Accept connections in a daemon thread (idempotent)."""
        with self._lock:
            if self._accept_thread is None and not self._stopping.is_set():
                self._accept_thread = threading.Thread(
                    target=self._accept_loop, name="socket-mode-accept", daemon=True
                )
                self._accept_thread.start()
        return self

    def close(self) -> None:
        """Send ``close`` (1001) to every connection, stop serving and release the port."""
        self._stopping.set()
        with self._lock:
            connections = list(self._connections.values())
            accept_thread = self._accept_thread
        for conn in connections:
            conn.send_close(1001, "server shutting down")
            conn.shutdown()
        if accept_thread is not None:
            accept_thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        with self._changed:
            self._connections.clear()
            self._changed.notify_all()

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``ws://<host>:<port>``."""
        host, port = self._listener.getsockname()[:2]
        return f"ws://{host!s}:{port}"

    # ----------------------------------------------------------------- the test's side

    def issue_url(self) -> str:
        """A new single-use connection URL (what ``apps.connections.open`` answers)."""
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return f"{self.base_url}/link/?ticket={ticket}&app_id={self.app_id}"

    def connection_count(self) -> int:
        """Open connections now."""
        with self._lock:
            return len(self._connections)

    @property
    def connections_opened(self) -> int:
        """Connections that completed the handshake since the server started (reconnects count)."""
        with self._lock:
            return self._opened

    def wait_connected(self, timeout: float = 5.0, opened: int = 1) -> None:
        """Block until a connection is open and at least *opened* were ever made (real seconds)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (self._connections and self._opened >= opened):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"socket mode: {len(self._connections)} open, {self._opened} of {opened} "
                        f"connections made after {timeout}s"
                    )
                self._changed.wait(left)

    def send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Push an envelope to the newest open connection; returns its ``envelope_id``.

        ``accepts_response_payload`` defaults to Slack's: true for ``slash_commands`` and for
        ``view_submission`` / ``block_suggestion`` interactions, false otherwise. Raises
        :class:`RuntimeError` when no app is connected.
        """
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = _ACCEPTS_RESPONSE.get(envelope_type, False) or (
                envelope_type == "interactive" and payload.get("type") in _INTERACTIVE_ACCEPTING
            )
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            message.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        conn = self._newest()
        with self._changed:
            self._envelopes.append(
                SocketEnvelope(
                    envelope_id, envelope_type, payload, accepts_response_payload, self._clock(), conn.id
                )
            )
            self._changed.notify_all()
        try:
            conn.send_json(message)
        except _Closed:
            raise RuntimeError("socket mode: the connection closed while sending") from None
        return envelope_id

    def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell the newest connection to reconnect (Slack's ``disconnect`` message)."""
        with contextlib.suppress(_Closed):
            self._newest().send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "slack-emulator"}}
            )

    def drop_connections(self, code: int | None = None) -> None:
        """Close every open connection: with a close frame carrying *code*, or abruptly (``None``)."""
        with self._lock:
            connections = list(self._connections.values())
        for conn in connections:
            if code is not None:
                conn.send_close(code, "dropped by the emulator")
            conn.shutdown()

    def envelopes(self) -> list[SocketEnvelope]:
        """Envelopes pushed so far, oldest first."""
        with self._lock:
            return list(self._envelopes)

    def acks(self, envelope_id: str | None = None) -> list[SocketAck]:
        """Acknowledgements received (for one envelope, or all), oldest first."""
        with self._lock:
            return [a for a in self._acks if envelope_id is None or a.envelope_id == envelope_id]

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:
        """Block until *envelope_id* is acknowledged (real seconds); returns the first ack."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := [a for a in self._acks if a.envelope_id == envelope_id]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"socket mode: no ack for envelope {envelope_id} after {timeout}s")
                self._changed.wait(left)
            return found[0]

    def messages(self) -> list[Any]:
        """Every text message received from the app (parsed JSON, or the raw text), oldest first."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the recorded envelopes, acks and messages (connections stay)."""
        with self._lock:
            self._envelopes.clear()
            self._acks.clear()
            self._messages.clear()

    # ----------------------------------------------------------------- serving

    def _newest(self) -> _Connection:
        with self._lock:
            if not self._connections:
                raise RuntimeError("socket mode: no app is connected")
            return next(reversed(self._connections.values()))

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("socket mode: accept failed")
                time.sleep(_POLL)
                continue
            thread = threading.Thread(target=self._serve, args=(sock,), name="socket-mode-conn", daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(_POLL)
        conn: _Connection | None = None
        try:
            accepted = self._handshake(sock)
            if accepted is not None:
                conn = accepted[0]
                self._read_loop(conn, accepted[1])
        except _Closed:
            pass
        except Exception:
            log.exception("socket mode: connection failed")
        finally:
            if conn is not None:
                conn.shutdown()
                with self._changed:
                    self._connections.pop(conn.id, None)
                    self._changed.notify_all()
            else:
                with contextlib.suppress(OSError):
                    sock.close()

    def _recv(self, sock: socket.socket, size: int) -> bytes:
        """Up to *size* bytes; waits (checking the stop flag) until at least one arrives."""
        while True:
            if self._stopping.is_set():
                raise _Closed
            try:
                data = sock.recv(size)
            except TimeoutError:
                continue
            except OSError:
                raise _Closed from None
            if not data:
                raise _Closed
            return data

    def _handshake(self, sock: socket.socket) -> tuple[_Connection, bytes] | None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > _MAX_HANDSHAKE:
                self._http_error(sock, 431, "Request Header Fields Too Large")
                return None
            buffer += self._recv(sock, 4096)
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        request = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if len(request) != 3 or request[0] != "GET":
            self._http_error(sock, 405, "Method Not Allowed")
            return None
        url = urlsplit(request[1])
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        key = headers.get("sec-websocket-key", "")
        upgrade = headers.get("upgrade", "").lower() == "websocket" and "upgrade" in {
            part.strip().lower() for part in headers.get("connection", "").split(",")
        }
        if url.path.rstrip("/") != "/link" or not upgrade or not key:
            self._http_error(sock, 400, "Bad Request")
            return None
        if headers.get("sec-websocket-version") != "13":
            self._http_error(sock, 426, "Upgrade Required", (("Sec-WebSocket-Version", "13"),))
            return None
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid:
            self._http_error(sock, 401, "Unauthorized")
            return None
        response = (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {_accept_key(key)}\r\n\r\n"
        )
        try:
            sock.sendall(response.encode("ascii"))
        except OSError:
            return None
        with self._lock:
            conn = _Connection(f"conn-{next(self._numbers)}", sock)
            connections = len(self._connections) + 1
        conn.send_json(
            {
                "type": "hello",
                "num_connections": connections,
                "debug_info": {
                    "host": "slack-emulator",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        with self._changed:  # connected once the app has its hello, so send() never overtakes it
            self._connections[conn.id] = conn
            self._opened += 1
            self._changed.notify_all()
        return conn, rest

    @staticmethod
    def _http_error(
        sock: socket.socket, status: int, reason: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        body = f"{status} {reason}\n".encode()
        head = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/plain", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in extra]
        head += ["Connection: close", "", ""]
        with contextlib.suppress(OSError):
            sock.sendall("\r\n".join(head).encode("ascii") + body)

    def _read_loop(self, conn: _Connection, initial: bytes = b"") -> None:
        buffer = bytearray(initial)  # bytes that came with the handshake

        def take(n: int) -> bytes:
            while len(buffer) < n:
                buffer.extend(self._recv(conn.sock, 65536))
            out = bytes(buffer[:n])
            del buffer[:n]
            return out

        fragments: list[bytes] = []
        fragment_opcode: int | None = None
        try:
            while True:
                b1, b2 = take(2)
                fin, opcode, masked, length = b1 & 0x80, b1 & 0x0F, b2 & 0x80, b2 & 0x7F
                if b1 & 0x70:
                    raise _ProtocolError(1002, "reserved bits set")
                if not masked:
                    raise _ProtocolError(1002, "client frames must be masked")
                if length == 126:
                    (length,) = struct.unpack("!H", take(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", take(8))
                if opcode >= 0x8 and (length > 125 or not fin):
                    raise _ProtocolError(1002, "bad control frame")
                if length > _MAX_MESSAGE:
                    raise _ProtocolError(1009, "message too big")
                mask = take(4)
                data = _unmask(take(length), mask)
                if opcode == _OP_PING:
                    conn.send_frame(_OP_PONG, data)
                elif opcode == _OP_PONG:
                    pass
                elif opcode == _OP_CLOSE:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1000
                    conn.send_close(code if code not in (1005, 1006, 1015) else 1000)
                    return
                elif opcode in (_OP_TEXT, _OP_BINARY, _OP_CONTINUATION):
                    if opcode == _OP_CONTINUATION and fragment_opcode is None:
                        raise _ProtocolError(1002, "unexpected continuation frame")
                    if opcode != _OP_CONTINUATION and fragment_opcode is not None:
                        raise _ProtocolError(1002, "expected a continuation frame")
                    if opcode != _OP_CONTINUATION:
                        fragment_opcode = opcode
                    fragments.append(data)
                    if sum(map(len, fragments)) > _MAX_MESSAGE:
                        raise _ProtocolError(1009, "message too big")
                    if fin:
                        whole, kind = b"".join(fragments), fragment_opcode
                        fragments, fragment_opcode = [], None
                        if kind == _OP_TEXT:
                            self._received(conn, whole)
                else:
                    raise _ProtocolError(1002, f"unknown opcode {opcode}")
        except _ProtocolError as exc:
            log.warning("socket mode: %s: %s", conn.id, exc.reason)
            conn.send_close(exc.code, exc.reason)

    def _received(self, conn: _Connection, data: bytes) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _ProtocolError(1007, "invalid UTF-8") from None
        try:
            message: Any = json.loads(text)
        except json.JSONDecodeError:
            message = text
        with self._changed:
            self._messages.append(message)
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                payload = message.get("payload")
                self._acks.append(
                    SocketAck(
                        message["envelope_id"],
                        payload if isinstance(payload, dict) else None,
                        self._clock(),
                        conn.id,
                    )
                )
            self._changed.notify_all()
