"""The HTTP layer: routes ``/api/<method>``, ``/upload/<file_id>``, ``/response/<key>``,
``/files/<file_id>/<name>`` and mounted pages to the emulator."""

from __future__ import annotations

import contextlib
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from bot.sandbox.slack_emulator.args import json_reply, text_reply
from bot.sandbox.slack_emulator.records import Args, WebRequest, WebResponse, WebRoute

if TYPE_CHECKING:
    from bot.sandbox.slack_emulator.emulator import SlackEmulator

log = logging.getLogger("bot.sandbox.slack_emulator")


class Handler(BaseHTTPRequestHandler):
    """One request; subclassed per emulator with the ``emulator`` attribute set."""

    emulator: SlackEmulator
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        data = self._body()
        parts = [unquote(p) for p in url.path.split("/") if p]
        route = self.emulator._mounted(url.path)
        if route is not None:
            self._send_web(route, url.path, url.query, data)
            return
        try:
            if len(parts) == 2 and parts[0] == "api":
                args, token = self._api_args(url.query, data)
                reply = self.emulator._handle_api(parts[1], args, token)
            elif len(parts) == 2 and parts[0] == "upload" and self.command == "POST":
                reply = self.emulator._handle_upload(parts[1], data)
            elif len(parts) == 2 and parts[0] == "response" and self.command == "POST":
                reply = self.emulator._handle_response_url(parts[1], data)
            elif len(parts) == 3 and parts[0] == "files" and self.command == "GET":
                reply = self.emulator._handle_file_download(parts[1], parts[2])
            else:
                reply = text_reply("not found", 404)
        except _BadRequest:
            reply = json_reply({"ok": False, "error": "invalid_form_data"})
        self._send(reply)

    def _api_args(self, query: str, data: bytes) -> tuple[Args, str | None]:
        args: Args = dict(parse_qsl(query, keep_blank_values=True))
        content_type = self.headers.get_content_type()
        if data:
            try:
                if content_type == "application/json":
                    body = json.loads(data)
                    if not isinstance(body, dict):
                        raise _BadRequest
                    args.update(body)
                elif content_type == "application/x-www-form-urlencoded":
                    args.update(parse_qsl(data.decode("utf-8"), keep_blank_values=True))
                else:
                    raise _BadRequest
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise _BadRequest from None
        token = args.pop("token", None)
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip()
        return args, cast("str | None", token)

    def _send_web(self, route: WebRoute, path: str, query: str, data: bytes) -> None:
        request = WebRequest(self.command, path, query, data, {k.lower(): v for k, v in self.headers.items()})
        try:
            answer = route(request)
        except Exception:
            log.exception("slack emulator: mounted route %s failed", path)
            answer = WebResponse(500, b"internal error", "text/plain; charset=utf-8")
        self._send(answer)

    def _send(self, reply: WebResponse) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)


class _BadRequest(Exception):
    pass


class Server(ThreadingHTTPServer):
    """A threading server with a backlog deep enough for concurrency tests."""

    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 stalls concurrent clients on SYN retries
