"""An in-process emulator of the Databricks REST API surface patbot uses.

Every emulated workspace is served by its own ``ThreadingHTTPServer`` on ``127.0.0.1`` (the SDK strips any
path from ``host``, so workspaces cannot share a port); one more server plays the account console. The real
``databricks-sdk`` clients talk to it with PAT auth::

    with DatabricksEmulator(demo_fleet(now)) as emu:
        w = WorkspaceClient(host=emu.host_of("prod"), token=DEFAULT_ADMIN_TOKEN)
        a = AccountClient(host=emu.account_host, account_id=emu.account_id, token=DEFAULT_ADMIN_TOKEN)

Error codes follow the public Databricks REST API (``{"error_code": ..., "message": ...}``):

=====================================================  ======  ==========================
case                                                   status  error_code
=====================================================  ======  ==========================
missing / wrong bearer token                           401     UNAUTHENTICATED
unknown path or method                                 404     ENDPOINT_NOT_FOUND
unknown token id (get / delete)                        404     RESOURCE_DOES_NOT_EXIST
OBO token for an unknown application id                404     RESOURCE_DOES_NOT_EXIST
OBO disabled on the workspace                          403     PERMISSION_DENIED
PATs disabled (``enableTokensConfig=false``)           403     PERMISSION_DENIED
lifetime above ``maxTokenLifetimeDays`` (or none)      400     INVALID_PARAMETER_VALUE
more than 600 tokens for one principal                 400     QUOTA_EXCEEDED
unknown API scope or modifier (create, PATCH)          400     INVALID_PARAMETER_VALUE
PATCH token: no / empty ``update_mask``, other field   400     INVALID_PARAMETER_VALUE
PATCH token: unknown token id                          404     RESOURCE_DOES_NOT_EXIST
bad workspace-conf key or value, bad request body      400     INVALID_PARAMETER_VALUE
malformed JSON body                                    400     MALFORMED_REQUEST
secret scope unknown                                   404     RESOURCE_DOES_NOT_EXIST
secret scope already exists                            400     RESOURCE_ALREADY_EXISTS
OAuth secret: unknown service principal id (or a user) 404     RESOURCE_DOES_NOT_EXIST
OAuth secret: bad ``lifetime`` / above 730 days        400     INVALID_PARAMETER_VALUE
OAuth secret: more than 5 for one service principal    400     INVALID_PARAMETER_VALUE
SCIM: bad filter / unknown id                          400/404 SCIM error body (``detail``)
injected faults: 429 (+ ``Retry-After``)               429     REQUEST_LIMIT_EXCEEDED
injected faults: 503 (+ ``Retry-After``)               503     TEMPORARILY_UNAVAILABLE
=====================================================  ======  ==========================

``QUOTA_EXCEEDED`` (600 tokens) and "On-behalf-of token creation for service principals is not enabled for
this workspace" are the documented / observed Databricks answers. Real workspaces usually answer a bad PAT with
403 "Invalid access token."; this emulator answers 401 ``UNAUTHENTICATED`` (which the SDK maps to
``Unauthenticated``), as newer Databricks front ends do.

Token values and OAuth secrets are never logged, never part of ``repr`` and never stored in the request log
(secret values in request bodies are redacted there too); an OAuth secret's value is answered once, by its
create call, and kept only as a hash.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit

from bot.governance.scopes import SCOPE_CATALOGUE

__all__ = [
    "ACCOUNT",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_ADMIN_TOKEN",
    "MAX_SECRETS_PER_PRINCIPAL",
    "MAX_TOKENS_PER_PRINCIPAL",
    "DatabricksEmulator",
    "EmulatedPrincipal",
    "EmulatedSpSecret",
    "EmulatedToken",
    "EmulatedWorkspace",
    "RecordedRequest",
    "demo_fleet",
    "iter_tokens",
    "seed_fleet",
]

ACCOUNT = "account"
"""Name of the account server in knobs (``fail``, ``set_latency``, ``take_down``) and in the request log."""

DEFAULT_ADMIN_TOKEN = "dapi0000emulator0000admin0000token"
"""Bearer token every emulated server accepts unless told otherwise."""

DEFAULT_ACCOUNT_ID = "7f3c1a2e-0d4b-4c8e-9a61-5b2d8e4f0c17"

MAX_TOKENS_PER_PRINCIPAL = 600
"""Databricks' per-principal token quota; beyond it creation answers ``QUOTA_EXCEEDED``."""

DAY_MS = 86_400_000

PrincipalKind = Literal["user", "service_principal"]

_SCIM_LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_SCIM_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
_SCIM_SP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"

# workspace-conf keys a real workspace knows; any key already present in a workspace's conf is accepted too.
_KNOWN_CONF_KEYS = frozenset(
    {
        "enableTokensConfig",
        "maxTokenLifetimeDays",
        "enableIpAccessLists",
        "enableDeprecatedGlobalInitScripts",
        "enableExportNotebook",
        "enableNotebookTableClipboard",
        "enableResultsDownloading",
        "enableVerboseAuditLogs",
        "enableWebTerminal",
        "enableDbfsFileBrowser",
        "enableWorkspaceFilesystem",
        "storeInteractiveNotebookResultsInCustomerAccount",
    }
)

# The error body a fault with this HTTP status answers with (the codes Databricks uses for that status).
_ERRORS_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_PARAMETER_VALUE", "Invalid request."),
    401: ("UNAUTHENTICATED", "Invalid access token."),
    403: ("PERMISSION_DENIED", "You do not have permission to perform this operation."),
    404: ("RESOURCE_DOES_NOT_EXIST", "The requested resource does not exist."),
    409: ("RESOURCE_CONFLICT", "The request conflicts with the current state of the resource."),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."),
    500: ("INTERNAL_ERROR", "Internal error."),
    501: ("NOT_IMPLEMENTED", "This API is not implemented."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}
_SECRET_BODY_KEYS = frozenset({"string_value", "bytes_value", "token_value"})
_SECRET_KEY_RE = re.compile(r"^[\w.-]{1,128}$")


# --------------------------------------------------------------------------------------------- data model


@dataclass
class EmulatedToken:
    """One personal access token as the token-management API describes it (times in epoch ms)."""

    token_id: str
    owner_id: int
    created_by_username: str
    comment: str
    creation_time: int
    expiry_time: int = -1
    last_used_day: int | None = None
    scopes: list[str] = field(default_factory=list)
    workspace_id: int = 0
    created_by_id: int | None = None
    """Creator; defaults to ``owner_id``. OBO tokens are created by the calling admin, owned by the SP."""
    token_value: str | None = field(default=None, repr=False, compare=False)
    """The secret; only kept for tokens created through the API and returned once, at creation."""
    autoscope_state: str | None = None
    """``AUTOSCOPE_STATE_…`` (``iam.AutoscopeState``); None for tokens autoscope never looked at."""
    inferred_scopes: list[str] = field(default_factory=list)
    backfill_scopes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``TokenInfo`` JSON object (never includes the value)."""
        body: dict[str, Any] = {
            "token_id": self.token_id,
            "owner_id": self.owner_id,
            "created_by_id": self.owner_id if self.created_by_id is None else self.created_by_id,
            "created_by_username": self.created_by_username,
            "comment": self.comment,
            "creation_time": self.creation_time,
            "expiry_time": self.expiry_time,
            "workspace_id": self.workspace_id,
        }
        if self.last_used_day is not None:
            body["last_used_day"] = self.last_used_day
        if self.scopes:
            body["scopes"] = list(self.scopes)
        body.update(_autoscope_json(self))
        return body


@dataclass
class EmulatedPrincipal:
    """A workspace user (``user_name`` = e-mail) or service principal (``application_id`` = UUID)."""

    id: int
    kind: PrincipalKind
    display_name: str
    user_name: str | None = None
    application_id: str | None = None
    active: bool = True

    @property
    def login(self) -> str:
        """What ``created_by_username`` shows for this principal: e-mail or application id."""
        return (self.user_name if self.kind == "user" else self.application_id) or self.display_name

    def to_scim(self) -> dict[str, Any]:
        """The SCIM resource JSON object."""
        if self.kind == "user":
            return {
                "id": str(self.id),
                "userName": self.user_name,
                "displayName": self.display_name,
                "active": self.active,
                "emails": [{"value": self.user_name, "type": "work", "primary": True}],
                "schemas": [_SCIM_USER_SCHEMA],
            }
        return {
            "id": str(self.id),
            "applicationId": self.application_id,
            "displayName": self.display_name,
            "active": self.active,
            "schemas": [_SCIM_SP_SCHEMA],
        }


@dataclass
class EmulatedWorkspace:
    """All the state of one emulated workspace."""

    name: str
    workspace_id: int
    deployment_name: str = ""
    status: str = "RUNNING"
    tokens: list[EmulatedToken] = field(default_factory=list)
    principals: list[EmulatedPrincipal] = field(default_factory=list)
    conf: dict[str, str] = field(default_factory=lambda: {"enableTokensConfig": "true"})
    obo_enabled: bool = True
    secrets: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    secret_scopes: set[str] = field(default_factory=set)
    sp_secrets: list[EmulatedSpSecret] = field(default_factory=list)
    """OAuth secrets of the service principals (service-principal secrets API), values never kept."""
    bearer_token: str = field(default=DEFAULT_ADMIN_TOKEN, repr=False)
    caller_id: int = 1_000_000_000_000_001
    """SCIM id of the admin the bearer token belongs to (``/Me``, creator of OBO tokens)."""
    caller_user_name: str = "patbot-admin@example.com"
    token_acl: list[tuple[str, str, str]] = field(
        default_factory=lambda: [("group_name", "admins", "CAN_MANAGE")]
    )
    """Token permissions: (``group_name`` | ``user_name`` | ``service_principal_name``, name, level)."""
    _principal_index: dict[int, EmulatedPrincipal] = field(default_factory=dict, repr=False, compare=False)
    _principal_key: tuple[int, int] = field(default=(0, -1), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.deployment_name:
            self.deployment_name = f"dbc-{self.workspace_id:x}"[:12]

    def token(self, token_id: str) -> EmulatedToken | None:
        """The token with this id, if any."""
        return next((t for t in self.tokens if t.token_id == token_id), None)

    def principal(self, principal_id: int) -> EmulatedPrincipal | None:
        """The principal with this SCIM id, if any (indexed: fleets of 100,000 tokens ask often)."""
        key = (id(self.principals), len(self.principals))
        if self._principal_key != key or principal_id not in self._principal_index:
            # Tests add, remove and replace principals: rebuild when the list changes, or on a miss.
            self._principal_index = {p.id: p for p in self.principals}
            self._principal_key = key
        return self._principal_index.get(principal_id)

    def service_principal(self, application_id: str) -> EmulatedPrincipal | None:
        """The service principal with this application id, if any."""
        return next(
            (
                p
                for p in self.principals
                if p.kind == "service_principal" and p.application_id == application_id
            ),
            None,
        )


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator answered (secret values in ``body`` are redacted)."""

    method: str
    path: str
    query: dict[str, str]
    workspace: str
    """Workspace name, or :data:`ACCOUNT` for the account server."""
    body: Any
    status: int
    at: float
    """When it was answered (epoch seconds, after any latency)."""
    received: float = 0.0
    """When it arrived."""


# ------------------------------------------------------------------------------------------------- server


@dataclass
class _Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    """Seconds to wait, outside the lock, before answering (a write fault that outlasts the client)."""
    drop: bool = False
    """Close the connection without answering."""


@dataclass
class _Fault:
    target: str | None
    path_prefix: str
    status: int
    remaining: int | None
    retry_after: int | None
    method: str | None
    error_code: str
    message: str


@dataclass
class _WriteFault:
    """A lost answer: act (or not), then answer ``status`` (None: drop the connection) after ``hang`` s."""

    target: str | None
    method: str
    path_prefix: str
    status: int | None
    retry_after: int | None
    act_first: bool
    hang: float
    remaining: int | None

    def answer(self) -> _Response:
        if self.status is None:
            return _Response(502, hang=self.hang, drop=True)
        code, message = _ERRORS_BY_STATUS.get(self.status, ("UNKNOWN", "Unknown error."))
        resp = _error(self.status, code, message)
        if self.retry_after is not None:
            resp.headers["Retry-After"] = str(self.retry_after)
        resp.hang = self.hang
        return resp


class _ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


class _ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 refuses a burst of new connections (a client opening a dozen at
    # once while this process is busy); a real server's backlog is far deeper.
    request_queue_size = 128

    def __init__(self, port: int, emulator: DatabricksEmulator, target: str) -> None:
        self.emulator = emulator
        self.target = target
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        handler = _KeepAliveHandler if emulator.keep_alive else _Handler
        super().__init__(("127.0.0.1", port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """End kept-alive connections too, so a server taken down refuses the very next call."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection cut by `take_down` is not an error worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one connection per request, so a server taken down refuses the very next call.
    protocol_version = "HTTP/1.0"
    server_version = "databricks-emulator"
    # Headers and body go out in two writes: with Nagle's algorithm on, the body would wait for the
    # client's delayed ACK (about 40 ms on Linux) on every kept-alive request, which no real server does.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        server = cast(_HTTPServer, self.server)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        resp = server.emulator._handle(
            server.target, self.command, self.path, self.headers.get("Authorization"), raw
        )
        if resp.hang:
            time.sleep(resp.hang)
        if resp.drop:
            self.close_connection = True
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self._answer(resp)

    def _answer(self, resp: _Response) -> None:
        payload = b"" if resp.body is None or resp.status == 204 else json.dumps(resp.body).encode()
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


class _KeepAliveHandler(_Handler):
    # HTTP/1.1: connections stay open between requests, as Databricks' do (`keep_alive=True`).
    protocol_version = "HTTP/1.1"


class _Listener:
    """One listening server (a workspace or the account console) that can be taken down and brought back."""

    def __init__(self, emulator: DatabricksEmulator, target: str) -> None:
        self._emulator = emulator
        self.target = target
        self.port = 0
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def up(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        server = _HTTPServer(self.port, self._emulator, self.target)
        self.port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self._emulator.poll_interval},
            name=f"databricks-emulator-{self.target}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)


class DatabricksEmulator:
    """Emulated Databricks workspaces (one HTTP server each) plus an account console server.

    All state lives behind one lock (:attr:`lock`); tests may read or mutate the :class:`EmulatedWorkspace`
    objects returned by :meth:`workspace` while holding it.
    """

    def __init__(
        self,
        workspaces: Iterable[EmulatedWorkspace],
        account_id: str | None = None,
        *,
        account_token: str = DEFAULT_ADMIN_TOKEN,
        scim_max_page_size: int = 100,
        clock: Callable[[], datetime] | None = None,
        poll_interval: float = 0.05,
        keep_alive: bool = False,
    ) -> None:
        self._workspaces: dict[str, EmulatedWorkspace] = {}
        for ws in workspaces:
            if ws.name in self._workspaces or ws.name == ACCOUNT:
                raise ValueError(f"workspace name {ws.name!r} is duplicated or reserved")
            self._workspaces[ws.name] = ws
        if len({ws.workspace_id for ws in self._workspaces.values()}) != len(self._workspaces):
            raise ValueError("workspace ids must be unique")
        self.account_id = account_id or DEFAULT_ACCOUNT_ID
        self._account_token = account_token
        self._scim_max_page_size = scim_max_page_size
        # How often each idle server checks for shutdown; a thousand-workspace fleet (bench) wakes less.
        self.poll_interval = poll_interval
        # HTTP/1.1 keep-alive (as Databricks); off by default: one connection per request (HTTP/1.0).
        self.keep_alive = keep_alive
        self._kind_cache: dict[tuple[str, str], tuple[tuple[int, int], list[EmulatedPrincipal]]] = {}
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._lifecycle = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._write_faults: list[_WriteFault] = []
        self._secret_stamps: dict[tuple[str, str, str], int] = {}
        self._latency: dict[str, float] = {}
        self._oauth_clients: dict[str, str] = {}
        self._oauth_tokens: set[str] = set()
        self._listeners: dict[str, _Listener] = {name: _Listener(self, name) for name in self._workspaces}
        self._listeners[ACCOUNT] = _Listener(self, ACCOUNT)

    # ------------------------------------------------------------------------------------- lifecycle

    def start(self) -> DatabricksEmulator:
        """Bind every server on a free port and start serving."""
        with self._lifecycle:
            for listener in self._listeners.values():
                listener.start()
        return self

    def stop(self) -> None:
        """Stop every server (in parallel: each shutdown waits for one poll interval)."""
        with self._lifecycle:
            stoppers = [threading.Thread(target=listener.stop) for listener in self._listeners.values()]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join()

    def __enter__(self) -> DatabricksEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def take_down(self, name: str) -> None:
        """Close a server's listening socket: its host now refuses connections (same URL when back up)."""
        with self._lifecycle:
            self._listener(name).stop()

    def bring_up(self, name: str) -> None:
        """Serve a server taken down again, on its old port."""
        with self._lifecycle:
            self._listener(name).start()

    def is_up(self, name: str) -> bool:
        """Whether a server (workspace name or :data:`ACCOUNT`) is accepting connections."""
        return self._listener(name).up

    # ---------------------------------------------------------------------------------------- access

    @property
    def lock(self) -> threading.RLock:
        """The lock guarding all emulator state."""
        return self._lock

    @property
    def names(self) -> list[str]:
        """Workspace names, in order."""
        return list(self._workspaces)

    @property
    def hosts(self) -> list[str]:
        """Workspace base URLs, in order."""
        return [self.host_of(name) for name in self._workspaces]

    def host_of(self, name: str) -> str:
        """Base URL of a workspace (or of the account server for :data:`ACCOUNT`)."""
        listener = self._listener(name)
        if not listener.port:
            raise RuntimeError("the emulator is not started")
        return f"http://127.0.0.1:{listener.port}"

    @property
    def account_host(self) -> str:
        """Base URL of the account console server."""
        return self.host_of(ACCOUNT)

    def host_for_deployment(self, deployment_name: str) -> str:
        """The emulated host standing in for ``https://<deployment_name>.cloud.databricks.com``."""
        for ws in self._workspaces.values():
            if ws.deployment_name == deployment_name:
                return self.host_of(ws.name)
        raise KeyError(deployment_name)

    def workspace(self, name_or_host: str) -> EmulatedWorkspace:
        """The live state of a workspace, by name or base URL."""
        if name_or_host in self._workspaces:
            return self._workspaces[name_or_host]
        wanted = name_or_host.rstrip("/")
        for name, ws in self._workspaces.items():
            if self._listeners[name].port and self.host_of(name) == wanted:
                return ws
        raise KeyError(name_or_host)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request answered so far."""
        with self._lock:
            return list(self._log)

    def count_requests(
        self, method: str | None = None, path_prefix: str = "", workspace: str | None = None
    ) -> int:
        """How many recorded requests match."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and r.path.startswith(path_prefix)
            and (workspace is None or r.workspace == workspace)
        )

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._log.clear()

    # ----------------------------------------------------------------------------------------- knobs

    def add_oauth_client(self, client_id: str, client_secret: str) -> None:
        """Let a service principal sign in with OAuth M2M (client credentials at `/oidc/v1/token` of any
        workspace); the access tokens it gets are admitted like the admin token."""
        with self._lock:
            self._oauth_clients[client_id] = client_secret

    def set_latency(self, name: str | None, seconds: float) -> None:
        """Sleep ``seconds`` before answering each request to a server (``None``: every server)."""
        with self._lock:
            for target in self._targets(name):
                self._latency[target] = max(0.0, seconds)

    def fail(
        self,
        workspace: str | None,
        path_prefix: str,
        status: int,
        times: int | None = None,
        retry_after: int | None = 1,
        *,
        method: str | None = None,
        error_code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (``None``: all) with ``status`` and its error body.

        ``workspace`` is a workspace name, :data:`ACCOUNT`, or ``None`` for every server. 429 and 503 carry
        ``Retry-After: retry_after`` (omitted when ``None``). Faults are checked before authentication.
        """
        if workspace is not None:
            self._listener(workspace)
        default_code, default_message = _ERRORS_BY_STATUS.get(status, ("UNKNOWN", "Unknown error."))
        with self._lock:
            self._faults.append(
                _Fault(
                    target=workspace,
                    path_prefix=path_prefix,
                    status=status,
                    remaining=times,
                    retry_after=retry_after,
                    method=method.upper() if method else None,
                    error_code=error_code or default_code,
                    message=message or default_message,
                )
            )

    def clear_faults(self, workspace: str | None = None) -> None:
        """Drop the fault plan (of one server, or all)."""
        with self._lock:
            self._faults = [f for f in self._faults if workspace is not None and f.target != workspace]
            self._write_faults = [
                f for f in self._write_faults if workspace is not None and f.target != workspace
            ]

    # ---------------------------------------------------------------------------------- write faults

    def lose_answer(
        self,
        workspace: str | None,
        method: str,
        path_prefix: str,
        *,
        status: int | None = 503,
        retry_after: int | None = 0,
        act: bool = True,
        hang: float = 0.0,
        times: int | None = 1,
    ) -> None:
        """Lose the answer of the next ``times`` matching requests (``None``: all), the way gateways do.

        With ``act`` the request is carried out first (Databricks acted, the answer went missing), without it
        it is not. The client then gets ``status`` (502/503/504, with ``Retry-After: retry_after`` unless
        ``None``), after waiting ``hang`` seconds (past the client's timeout, it sees a timeout); with
        ``status=None`` the connection is closed without an answer (a reset).
        """
        if workspace is not None:
            self._listener(workspace)
        with self._lock:
            self._write_faults.append(
                _WriteFault(workspace, method.upper(), path_prefix, status, retry_after, act, hang, times)
            )

    def call_counts(self, workspace: str | None = None) -> dict[tuple[str, str], int]:
        """How many requests arrived, per (method, path), whatever they were answered."""
        counts: dict[tuple[str, str], int] = {}
        for r in self.requests:
            if workspace is None or r.workspace == workspace:
                counts[(r.method, r.path)] = counts.get((r.method, r.path), 0) + 1
        return counts

    def _take_write_fault(self, target: str, method: str, path: str) -> _WriteFault | None:
        for fault in self._write_faults:
            if (
                fault.target not in (None, target)
                or fault.method != method
                or not path.startswith(fault.path_prefix)
            ):
                continue
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    continue
                fault.remaining -= 1
            return fault
        return None

    def _touch_secret(self, ws: EmulatedWorkspace, scope: str, key: str) -> None:
        slot = (ws.name, scope, key)
        self._secret_stamps[slot] = max(self._now_ms(), self._secret_stamps.get(slot, 0) + 1)

    def _stamp_of(self, ws: EmulatedWorkspace, scope: str, key: str) -> int:
        return self._secret_stamps.setdefault((ws.name, scope, key), self._now_ms())

    # -------------------------------------------------------------------------------------- internals

    def _listener(self, name: str) -> _Listener:
        try:
            return self._listeners[name]
        except KeyError:
            raise KeyError(f"unknown workspace {name!r}") from None

    def _targets(self, name: str | None) -> list[str]:
        if name is None:
            return list(self._listeners)
        self._listener(name)
        return [name]

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    def _handle(
        self, target: str, method: str, raw_path: str, auth: str | None, raw_body: bytes
    ) -> _Response:
        received = time.time()
        with self._lock:
            delay = self._latency.get(target, 0.0)
        if delay:
            time.sleep(delay)
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body: Any = None
        resp: _Response | None = None
        if path.startswith("/oidc/") and target != ACCOUNT:
            resp = self._oidc(target, method, path, auth, raw_body)  # a form, not JSON
            raw_body = b""
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                resp = _error(400, "MALFORMED_REQUEST", "Could not parse request body as JSON.")
        with self._lock:
            if resp is None:
                resp = self._fault(target, method, path)
            write_fault = self._take_write_fault(target, method, path) if resp is None else None
            if resp is None and (write_fault is None or write_fault.act_first):
                resp = self._route(target, method, path, query, auth, body)
            if write_fault is not None:
                resp = write_fault.answer()
            assert resp is not None
            if target != ACCOUNT:
                resp.headers.setdefault("x-databricks-org-id", str(self._workspaces[target].workspace_id))
            self._log.append(
                RecordedRequest(
                    method, path, query, target, _redact(body), resp.status, time.time(), received=received
                )
            )
        return resp

    def _fault(self, target: str, method: str, path: str) -> _Response | None:
        for fault in self._faults:
            if fault.target not in (None, target) or not path.startswith(fault.path_prefix):
                continue
            if fault.method is not None and fault.method != method:
                continue
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    continue
                fault.remaining -= 1
            resp = _error(fault.status, fault.error_code, fault.message)
            if fault.status in (429, 503) and fault.retry_after is not None:
                resp.headers["Retry-After"] = str(fault.retry_after)
            return resp
        return None

    def _route(
        self, target: str, method: str, path: str, query: dict[str, str], auth: str | None, body: Any
    ) -> _Response:
        if method == "GET" and path == "/.well-known/databricks-config":
            return _Response(200, self._host_metadata(target))
        expected = self._account_token if target == ACCOUNT else self._workspaces[target].bearer_token
        if auth is None:
            return _error(401, "UNAUTHENTICATED", "Missing Authorization header.")
        oauth = auth.startswith("Bearer ") and auth[7:] in self._oauth_tokens
        if not oauth and not hmac.compare_digest(auth.encode(), f"Bearer {expected}".encode()):
            return _error(401, "UNAUTHENTICATED", "Invalid access token.")
        try:
            if target == ACCOUNT:
                return self._route_account(method, path)
            return self._route_workspace(self._workspaces[target], method, path, query, body)
        except _ApiError as e:
            return _error(e.status, e.error_code, e.message)
        except _ScimError as e:
            scim: dict[str, Any] = {
                "schemas": [_SCIM_ERROR_SCHEMA],
                "detail": e.detail,
                "status": str(e.status),
            }
            if e.scim_type:
                scim["scimType"] = e.scim_type
            return _Response(e.status, scim)

    def _oidc(self, target: str, method: str, path: str, auth: str | None, raw_body: bytes) -> _Response:
        """The workspace's OAuth server: its discovery document and the client-credentials grant (M2M)."""
        host = self.host_of(target)
        if method == "GET" and path == "/oidc/.well-known/oauth-authorization-server":
            return _Response(
                200,
                {
                    "issuer": f"{host}/oidc",
                    "authorization_endpoint": f"{host}/oidc/v1/authorize",
                    "token_endpoint": f"{host}/oidc/v1/token",
                },
            )
        if method != "POST" or path != "/oidc/v1/token":
            return _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        form = {k: v[-1] for k, v in parse_qs(raw_body.decode("utf-8", "replace")).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if auth and auth.startswith("Basic "):
            with contextlib.suppress(ValueError):
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return _Response(
                400, {"error": "unsupported_grant_type", "error_description": "client_credentials only"}
            )
        with self._lock:
            known = self._oauth_clients.get(client_id)
            if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
                return _Response(
                    401, {"error": "invalid_client", "error_description": "Client authentication failed"}
                )
            access = secrets.token_urlsafe(24)
            self._oauth_tokens.add(access)
        return _Response(
            200, {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": "all-apis"}
        )

    def _host_metadata(self, target: str) -> dict[str, Any]:
        host = self.host_of(target)
        if target == ACCOUNT:
            return {"oidc_endpoint": f"{host}/oidc/accounts/{self.account_id}", "account_id": self.account_id}
        return {
            "oidc_endpoint": f"{host}/oidc",
            "workspace_id": str(self._workspaces[target].workspace_id),
            "account_id": self.account_id,
        }

    # ---------------------------------------------------------------------------------------- account

    def _route_account(self, method: str, path: str) -> _Response:
        m = re.fullmatch(r"/api/2\.0/accounts/([^/]+)/workspaces(?:/(\d+))?", path)
        if m is None or method != "GET":
            raise _not_found(method, path)
        if m.group(1) != self.account_id:
            raise _ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Account {m.group(1)} does not exist.")
        listing = [self._workspace_json(ws) for ws in self._workspaces.values()]
        if m.group(2) is None:
            return _Response(200, listing)
        for item in listing:
            if str(item["workspace_id"]) == m.group(2):
                return _Response(200, item)
        raise _ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Workspace {m.group(2)} does not exist.")

    def _workspace_json(self, ws: EmulatedWorkspace) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "workspace_id": ws.workspace_id,
            "workspace_name": ws.name,
            "deployment_name": ws.deployment_name,
            "workspace_status": ws.status,
            "workspace_status_message": "Workspace is running." if ws.status == "RUNNING" else ws.status,
            "aws_region": "us-east-1",
            "pricing_tier": "ENTERPRISE",
        }

    # -------------------------------------------------------------------------------------- workspace

    def _route_workspace(
        self, ws: EmulatedWorkspace, method: str, path: str, query: dict[str, str], body: Any
    ) -> _Response:
        if path == "/api/2.0/token-management/tokens" and method == "GET":
            return self._list_tokens(ws, query)
        m = re.fullmatch(r"/api/2\.0/token-management/tokens/([^/]+)", path)
        if m is not None and method == "PATCH":
            return self._update_token(ws, m.group(1), _object(body))
        if path == TOKEN_PERMISSIONS_PATH and method == "GET":
            return _Response(200, _token_permissions_json(ws))
        if m is not None and method in ("GET", "DELETE"):
            token = ws.token(m.group(1))
            if token is None:
                raise _ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Token with ID {m.group(1)} does not exist.")
            if method == "GET":
                return _Response(200, {"token_info": token.to_json()})
            ws.tokens.remove(token)
            return _Response(200, {})
        if path == "/api/2.0/token-management/on-behalf-of/tokens" and method == "POST":
            return self._create_obo_token(ws, _object(body))
        if path == "/api/2.0/workspace-conf":
            if method == "GET":
                return self._get_conf(ws, query)
            if method == "PATCH":
                return self._set_conf(ws, _object(body))
        if path.startswith("/api/2.0/preview/scim/v2/") and method == "GET":
            return self._scim(ws, path.removeprefix("/api/2.0/preview/scim/v2/"), query)
        if path.startswith("/api/2.0/secrets/"):
            return self._secrets(ws, method, path.removeprefix("/api/2.0/secrets/"), query, body)
        m = _SP_SECRETS_RE.fullmatch(path)
        if m is not None:
            return self._sp_secrets(ws, method, m.group(1), m.group(2), query, body)
        raise _not_found(method, path)

    def _list_tokens(self, ws: EmulatedWorkspace, query: dict[str, str]) -> _Response:
        tokens = ws.tokens
        if "created_by_id" in query:
            try:
                creator = int(query["created_by_id"])
            except ValueError:
                raise _ApiError(400, "INVALID_PARAMETER_VALUE", "created_by_id must be an integer.") from None
            tokens = [
                t for t in tokens if (t.owner_id if t.created_by_id is None else t.created_by_id) == creator
            ]
        if "created_by_username" in query:
            tokens = [t for t in tokens if t.created_by_username == query["created_by_username"]]
        return _Response(200, {"token_infos": [t.to_json() for t in tokens]})

    def _create_obo_token(self, ws: EmulatedWorkspace, body: dict[str, Any]) -> _Response:
        if not ws.obo_enabled:
            raise _ApiError(
                403,
                "PERMISSION_DENIED",
                "On-behalf-of token creation for service principals is not enabled for this workspace.",
            )
        if ws.conf.get("enableTokensConfig", "true").lower() == "false":
            raise _ApiError(
                403, "PERMISSION_DENIED", "Personal access tokens are disabled for this workspace."
            )
        application_id = body.get("application_id")
        if not isinstance(application_id, str) or not application_id:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "application_id is required.")
        sp = ws.service_principal(application_id)
        if sp is None:
            raise _ApiError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"Service principal with application ID {application_id} does not exist.",
            )
        lifetime = body.get("lifetime_seconds")
        if lifetime is not None and (not isinstance(lifetime, int) or isinstance(lifetime, bool)):
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "lifetime_seconds must be an integer.")
        max_days = _max_lifetime_days(ws)
        if max_days is not None and (lifetime is None or lifetime <= 0 or lifetime > max_days * 86_400):
            raise _ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"Token lifetime must be set and cannot exceed the maximum of {max_days} days "
                "configured for this workspace (maxTokenLifetimeDays).",
            )
        if sum(1 for t in ws.tokens if t.owner_id == sp.id) >= MAX_TOKENS_PER_PRINCIPAL:
            raise _ApiError(
                400,
                "QUOTA_EXCEEDED",
                f"Cannot create more than {MAX_TOKENS_PER_PRINCIPAL} tokens for this principal.",
            )
        scopes = _checked_scopes(body.get("scopes") or [])
        autoscope = body.get("autoscope_enabled")
        if autoscope is not None and not isinstance(autoscope, bool):
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "autoscope_enabled must be a boolean.")
        comment = body.get("comment") or ""
        now = self._now_ms()
        token = EmulatedToken(
            token_id=secrets.token_hex(32),
            owner_id=sp.id,
            created_by_username=ws.caller_user_name,
            created_by_id=ws.caller_id,
            comment=str(comment),
            creation_time=now,
            expiry_time=now + lifetime * 1000 if lifetime is not None and lifetime > 0 else -1,
            scopes=list(scopes),
            workspace_id=ws.workspace_id,
            token_value="dapi" + secrets.token_hex(16),
            autoscope_state=AUTOSCOPE_RUNNING if autoscope else None,
        )
        ws.tokens.append(token)
        return _Response(200, {"token_info": token.to_json(), "token_value": token.token_value})

    def _get_conf(self, ws: EmulatedWorkspace, query: dict[str, str]) -> _Response:
        keys = [k.strip() for k in query.get("keys", "").split(",") if k.strip()]
        if not keys:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "Missing required parameter: keys.")
        unknown = [k for k in keys if k not in _KNOWN_CONF_KEYS and k not in ws.conf]
        if unknown:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid keys: {', '.join(unknown)}")
        return _Response(200, {k: ws.conf.get(k) for k in keys})

    def _set_conf(self, ws: EmulatedWorkspace, body: dict[str, Any]) -> _Response:
        updates: dict[str, str | None] = {}
        for key, value in body.items():
            if key not in _KNOWN_CONF_KEYS and key not in ws.conf:
                raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid keys: {key}")
            if value is not None and not isinstance(value, str):
                raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Value for {key} must be a string.")
            if key == "maxTokenLifetimeDays" and value and not (value.isdigit() and int(value) > 0):
                raise _ApiError(
                    400, "INVALID_PARAMETER_VALUE", "maxTokenLifetimeDays must be a positive integer."
                )
            if key.startswith("enable") and value is not None and value.lower() not in ("true", "false"):
                raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Value for {key} must be true or false.")
            updates[key] = value
        for key, value in updates.items():
            if value is None or value == "":
                ws.conf.pop(key, None)
            else:
                ws.conf[key] = value
        return _Response(204)

    # ----------------------------------------------------------------------------------- token scopes

    def _update_token(self, ws: EmulatedWorkspace, token_id: str, body: dict[str, Any]) -> _Response:
        """``PATCH /api/2.0/token-management/tokens/{token_id}``: ``{"token": {...}, "update_mask": "scopes"}``.

        Answers the bare ``TokenInfo``, as databricks-sdk's ``update_token_management`` reads it.
        """
        mask = body.get("update_mask")
        if not isinstance(mask, str) or not mask.strip():
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "update_mask is required.")
        fields = [f.strip() for f in mask.split(",")]
        unknown = [f for f in fields if f not in _UPDATABLE_TOKEN_FIELDS]
        if unknown:
            raise _ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"Invalid update_mask: {', '.join(unknown)} cannot be updated.",
            )
        new = body.get("token")
        if not isinstance(new, dict):
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "token is required.")
        if new.get("token_id") not in (None, token_id):
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "token.token_id does not match the path.")
        token = ws.token(token_id)
        if token is None:
            raise _ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Token with ID {token_id} does not exist.")
        scopes = _checked_scopes(new.get("scopes") or []) if "scopes" in fields else token.scopes
        if "scopes" in fields and not scopes:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "scopes must not be empty.")
        comment = new.get("comment") if "comment" in fields else token.comment
        if not isinstance(comment, str | None):
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", "comment must be a string.")
        token.scopes = list(scopes)
        token.comment = comment or ""
        if "scopes" in fields and token.autoscope_state is not None:
            token.autoscope_state = AUTOSCOPE_USER_SELECTED
        return _Response(200, token.to_json())

    # ------------------------------------------------------------------------------------------- SCIM

    def _scim(self, ws: EmulatedWorkspace, resource: str, query: dict[str, str]) -> _Response:
        if resource == "Me":
            return _Response(
                200,
                {
                    "id": str(ws.caller_id),
                    "userName": ws.caller_user_name,
                    "displayName": "patbot admin",
                    "active": True,
                    "emails": [{"value": ws.caller_user_name, "type": "work", "primary": True}],
                    "schemas": [_SCIM_USER_SCHEMA],
                },
            )
        kinds: dict[str, PrincipalKind] = {"Users": "user", "ServicePrincipals": "service_principal"}
        collection, _, item = resource.partition("/")
        if collection not in kinds or "/" in item:
            raise _not_found("GET", f"/api/2.0/preview/scim/v2/{resource}")
        pool = self._principals_of_kind(ws, kinds[collection])
        if item:
            found = next((p for p in pool if str(p.id) == item), None)
            if found is None:
                noun = "User" if collection == "Users" else "Service principal"
                raise _ScimError(404, f"{noun} {item} not found.")
            return _Response(200, found.to_scim())
        if query.get("filter"):
            wanted_ids = _id_filter(query["filter"])
            if wanted_ids is not None:  # `id eq "…" or id eq "…"`: an index lookup, as on Databricks
                pool = [p for p in pool if p.id in wanted_ids]
            else:
                predicate = _parse_scim_filter(query["filter"])
                pool = [p for p in pool if predicate(p.to_scim())]
        try:
            start = max(1, int(query.get("startIndex") or 1))
            count = int(query["count"]) if query.get("count") else self._scim_max_page_size
        except ValueError:
            raise _ScimError(400, "startIndex and count must be integers.", "invalidValue") from None
        count = max(0, min(count, self._scim_max_page_size))
        page = [_project(p.to_scim(), query) for p in pool[start - 1 : start - 1 + count]]
        listing: dict[str, Any] = {
            "totalResults": len(pool),
            "startIndex": start,
            "itemsPerPage": len(page),
            "schemas": [_SCIM_LIST_SCHEMA],
        }
        if page:
            listing["Resources"] = page
        return _Response(200, listing)

    def _principals_of_kind(self, ws: EmulatedWorkspace, kind: PrincipalKind) -> list[EmulatedPrincipal]:
        # Paging 50,000 users would otherwise scan them all for every page of 100. The cache holds while
        # the list object and its length stay the same (tests add or replace principals, never swap one).
        key = (id(ws.principals), len(ws.principals))
        cached = self._kind_cache.get((ws.name, kind))
        if cached is None or cached[0] != key:
            cached = (key, [p for p in ws.principals if p.kind == kind])
            self._kind_cache[(ws.name, kind)] = cached
        return cached[1]

    # ---------------------------------------------------------------------------------------- secrets

    def _secrets(
        self, ws: EmulatedWorkspace, method: str, action: str, query: dict[str, str], body: Any
    ) -> _Response:
        if action == "scopes/list" and method == "GET":
            scopes = [{"name": s, "backend_type": "DATABRICKS"} for s in sorted(ws.secret_scopes)]
            return _Response(200, {"scopes": scopes})
        if action == "scopes/create" and method == "POST":
            scope = _required_str(_object(body), "scope")
            if scope in ws.secret_scopes:
                raise _ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Scope {scope} already exists!")
            ws.secret_scopes.add(scope)
            return _Response(200, {})
        if action == "list" and method == "GET":
            scope = query.get("scope", "")
            _require_scope(ws, scope)
            keys = sorted(k for s, k in ws.secrets if s == scope)
            listing = [{"key": k, "last_updated_timestamp": self._stamp_of(ws, scope, k)} for k in keys]
            return _Response(200, {"secrets": listing})
        if action == "put" and method == "POST":
            req = _object(body)
            scope, key = _required_str(req, "scope"), _required_str(req, "key")
            if not _SECRET_KEY_RE.fullmatch(key):
                raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid secret key: {key!r}.")
            has_string, has_bytes = req.get("string_value") is not None, req.get("bytes_value") is not None
            if has_string == has_bytes:
                raise _ApiError(
                    400, "INVALID_PARAMETER_VALUE", "Exactly one of string_value and bytes_value is required."
                )
            _require_scope(ws, scope)
            ws.secrets[(scope, key)] = str(req["string_value"] if has_string else req["bytes_value"])
            self._touch_secret(ws, scope, key)
            return _Response(200, {})
        if action == "delete" and method == "POST":
            req = _object(body)
            scope, key = _required_str(req, "scope"), _required_str(req, "key")
            _require_scope(ws, scope)
            if ws.secrets.pop((scope, key), None) is None:
                raise _ApiError(
                    404, "RESOURCE_DOES_NOT_EXIST", f"Secret {key} does not exist in scope {scope}!"
                )
            return _Response(200, {})
        raise _not_found(method, f"/api/2.0/secrets/{action}")

    # --------------------------------------------------------------------- service-principal OAuth secrets

    def _sp_secrets(
        self,
        ws: EmulatedWorkspace,
        method: str,
        principal_id: str,
        secret_id: str | None,
        query: dict[str, str],
        body: Any,
    ) -> _Response:
        """``/api/2.0/accounts/servicePrincipals/{id}/credentials/secrets[/{secret_id}]`` (workspace proxy).

        ``{id}`` is the service principal's numeric SCIM id. Create answers the secret once; list never does.
        """
        sp = ws.principal(int(principal_id)) if principal_id.isdigit() else None
        if sp is None or sp.kind != "service_principal":
            raise _ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Service principal {principal_id} does not exist."
            )
        owned = [s for s in ws.sp_secrets if s.principal_id == sp.id]
        if secret_id is None and method == "GET":
            return _Response(200, _sp_secret_page(owned, query))
        if secret_id is None and method == "POST":
            return self._create_sp_secret(ws, sp, owned, _object(body))
        if secret_id is not None and method == "DELETE":
            found = next((s for s in owned if s.secret_id == secret_id), None)
            if found is None:
                raise _ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Secret {secret_id} does not exist.")
            ws.sp_secrets.remove(found)
            return _Response(200, {})
        raise _not_found(method, f"/api/2.0/accounts/servicePrincipals/{principal_id}/credentials/secrets")

    def _create_sp_secret(
        self,
        ws: EmulatedWorkspace,
        sp: EmulatedPrincipal,
        owned: list[EmulatedSpSecret],
        body: dict[str, Any],
    ) -> _Response:
        seconds = _sp_secret_lifetime(body.get("lifetime"))
        scopes = _checked_scopes(body.get("scopes") or [])
        if len(owned) >= MAX_SECRETS_PER_PRINCIPAL:
            raise _ApiError(
                400,
                "INVALID_PARAMETER_VALUE",
                f"A service principal can have at most {MAX_SECRETS_PER_PRINCIPAL} OAuth secrets.",
            )
        value = "dose" + secrets.token_hex(18)
        now = self._now_ms()
        secret = EmulatedSpSecret(
            secret_id=secrets.token_hex(32),
            principal_id=sp.id,
            create_time=now,
            expire_time=now + seconds * 1000,
            scopes=scopes,
            secret_hash=hashlib.sha256(value.encode()).hexdigest()[:12],
        )
        ws.sp_secrets.append(secret)
        return _Response(200, {**secret.to_json(), "secret": value})


# --------------------------------------------------------------------------------------------- helpers


def _error(status: int, error_code: str, message: str) -> _Response:
    return _Response(status, {"error_code": error_code, "message": message})


def _not_found(method: str, path: str) -> _ApiError:
    return _ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _ApiError(400, "INVALID_PARAMETER_VALUE", "The request body must be a JSON object.")
    return cast(dict[str, Any], body)


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {name}")
    return value


def _require_scope(ws: EmulatedWorkspace, scope: str) -> None:
    if scope not in ws.secret_scopes:
        raise _ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")


def _max_lifetime_days(ws: EmulatedWorkspace) -> int | None:
    raw = ws.conf.get("maxTokenLifetimeDays")
    if raw is None or not raw.strip().isdigit() or int(raw) <= 0:
        return None
    return int(raw)


def _redact(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: "**REDACTED**" if k in _SECRET_BODY_KEYS else _redact(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_redact(v) for v in body]
    return body


def _project(resource: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """Apply SCIM ``attributes`` / ``excludedAttributes`` (``id`` always stays)."""
    if query.get("attributes"):
        wanted = {a.strip().lower() for a in query["attributes"].split(",")} | {"id"}
        resource = {k: v for k, v in resource.items() if k.lower() in wanted}
    if query.get("excludedAttributes"):
        dropped = {a.strip().lower() for a in query["excludedAttributes"].split(",")} - {"id"}
        resource = {k: v for k, v in resource.items() if k.lower() not in dropped}
    return resource


_FILTER_TOKEN_RE = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^\s"]+)')
_ID_FILTER_RE = re.compile(r'\s*id\s+eq\s+"(\d+)"\s*(?:or\s+|$)', re.IGNORECASE)
# Databricks refuses SCIM filters of more than 200 nodes (each comparison and each and/or is one).
SCIM_FILTER_MAX_NODES = 200


def _id_filter(text: str) -> set[int] | None:
    """The IDs of a filter made only of ``id eq "<digits>"`` terms joined by ``or``; None otherwise."""
    ids: set[int] = set()
    pos = 0
    while pos < len(text):
        m = _ID_FILTER_RE.match(text, pos)
        if m is None:
            return None
        ids.add(int(m.group(1)))
        pos = m.end()
    if not ids or not text.rstrip().endswith('"'):
        return None
    if 2 * len(ids) - 1 > SCIM_FILTER_MAX_NODES:
        raise _ScimError(400, f"Filter exceeds {SCIM_FILTER_MAX_NODES} nodes.", "invalidFilter")
    return ids


def _parse_scim_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """Parse a simple SCIM filter: ``attr op value`` terms joined by ``and`` / ``or`` (``and`` binds tighter).

    Operators: ``eq``, ``ne``, ``co``, ``sw``, ``ew``, ``pr``. String comparisons are case-insensitive, as
    for Databricks' ``userName`` / ``displayName`` / ``applicationId``.
    """
    tokens = _FILTER_TOKEN_RE.findall(text.strip())
    if not tokens:
        raise _ScimError(400, f"Invalid filter: {text!r}", "invalidFilter")
    joiners = sum(1 for t in tokens if t.lower() in ("or", "and"))
    if (len(tokens) - joiners) // 3 + joiners > SCIM_FILTER_MAX_NODES:
        raise _ScimError(400, f"Filter exceeds {SCIM_FILTER_MAX_NODES} nodes.", "invalidFilter")
    alternatives: list[list[Callable[[dict[str, Any]], bool]]] = [[]]
    i = 0
    while True:
        if i + 1 < len(tokens) and tokens[i + 1].lower() == "pr":
            alternatives[-1].append(_condition(tokens[i], "pr", None))
            i += 2
        elif i + 2 < len(tokens):
            alternatives[-1].append(_condition(tokens[i], tokens[i + 1].lower(), tokens[i + 2]))
            i += 3
        else:
            raise _ScimError(400, f"Invalid filter: {text!r}", "invalidFilter")
        if i == len(tokens):
            break
        joiner = tokens[i].lower()
        if joiner == "or":
            alternatives.append([])
        elif joiner != "and":
            raise _ScimError(400, f"Invalid filter: {text!r}", "invalidFilter")
        i += 1

    def predicate(resource: dict[str, Any]) -> bool:
        return any(all(cond(resource) for cond in conj) for conj in alternatives)

    return predicate


def _condition(attr: str, op: str, raw: str | None) -> Callable[[dict[str, Any]], bool]:
    if op not in ("eq", "ne", "co", "sw", "ew", "pr"):
        raise _ScimError(400, f"Unsupported filter operator: {op}", "invalidFilter")
    value: str | None = None
    if raw is not None:
        if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
            value = json.loads(raw)
        elif raw.lower() in ("true", "false", "null") or raw.lstrip("-").isdigit():
            value = raw.lower()
        else:
            raise _ScimError(400, f"Invalid filter value: {raw}", "invalidFilter")
    path = attr.lower()

    def lookup(resource: dict[str, Any]) -> str | None:
        if path in ("emails", "emails.value"):
            emails = resource.get("emails") or []
            return str(emails[0]["value"]).lower() if emails else None
        for key, v in resource.items():
            if key.lower() == path:
                if v is None:
                    return None
                return ("true" if v else "false") if isinstance(v, bool) else str(v).lower()
        return None

    def check(resource: dict[str, Any]) -> bool:
        actual = lookup(resource)
        if op == "pr":
            return actual is not None
        assert value is not None
        wanted = value.lower()
        if op == "ne":
            return actual != wanted
        if actual is None:
            return False
        if op == "eq":
            return actual == wanted
        if op == "co":
            return wanted in actual
        if op == "sw":
            return actual.startswith(wanted)
        return actual.endswith(wanted)

    return check


# ----------------------------------------------------------------------------------- scope helpers

TOKEN_PERMISSIONS_PATH = "/api/2.0/permissions/authorization/tokens"
AUTOSCOPE_RUNNING = "AUTOSCOPE_STATE_RUNNING"
AUTOSCOPE_USER_SELECTED = "AUTOSCOPE_STATE_USER_SELECTED"
_UPDATABLE_TOKEN_FIELDS = frozenset({"comment", "scopes"})
_SCOPE_MODIFIERS = frozenset({"read", "restricted-query"})


def _checked_scopes(raw: Any) -> list[str]:
    """A ``scopes`` list as Databricks accepts it: known names, ``:read``, ``:restricted-query`` on sql."""
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise _ApiError(400, "INVALID_PARAMETER_VALUE", "scopes must be a list of strings.")
    for text in raw:
        name, *mods = text.split(":")
        if name not in SCOPE_CATALOGUE or not set(mods) <= _SCOPE_MODIFIERS:
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid scope: {text}")
        if "restricted-query" in mods and name != "sql":
            raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid scope: {text}")
    return list(raw)


def _autoscope_json(token: EmulatedToken) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if token.autoscope_state is not None:
        body["autoscope_state"] = token.autoscope_state
    if token.inferred_scopes:
        body["inferred_scopes"] = list(token.inferred_scopes)
    if token.backfill_scopes:
        body["backfill_scopes"] = list(token.backfill_scopes)
    return body


def _token_permissions_json(ws: EmulatedWorkspace) -> dict[str, Any]:
    """``GET /api/2.0/permissions/authorization/tokens``: the ACL of the workspace's tokens."""
    acl: list[dict[str, Any]] = []
    for field_name, name, level in ws.token_acl:
        entry: dict[str, Any] = {
            field_name: name,
            "all_permissions": [{"permission_level": level, "inherited": False}],
        }
        if field_name != "group_name":
            principal = next((p for p in ws.principals if p.login == name), None)
            if principal is not None:
                entry["display_name"] = principal.display_name
        acl.append(entry)
    return {"object_id": "authorization/tokens", "object_type": "tokens", "access_control_list": acl}


# ------------------------------------------------------------------------ service-principal OAuth secrets

MAX_SECRETS_PER_PRINCIPAL = 5
"""Databricks allows five OAuth secrets per service principal."""
MAX_SP_SECRET_LIFETIME_SECONDS = 730 * 86_400
"""The longest (and the default) lifetime of an OAuth secret: 730 days."""
_SP_SECRETS_RE = re.compile(r"/api/2\.0/accounts/servicePrincipals/([^/]+)/credentials/secrets(?:/([^/]+))?")
_DURATION_RE = re.compile(r"^(\d+)(?:\.\d+)?s$")


@dataclass
class EmulatedSpSecret:
    """One OAuth secret of a service principal, as ``SecretInfo`` describes it (times in epoch ms)."""

    secret_id: str
    principal_id: int
    create_time: int
    expire_time: int | None = None
    scopes: list[str] = field(default_factory=list)
    status: str = "ACTIVE"
    secret_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``SecretInfo`` JSON object (never the value)."""
        body: dict[str, Any] = {
            "id": self.secret_id,
            "secret_hash": self.secret_hash,
            "create_time": _rfc3339(self.create_time),
            "update_time": _rfc3339(self.create_time),
            "status": self.status,
        }
        if self.expire_time is not None:
            body["expire_time"] = _rfc3339(self.expire_time)
        if self.scopes:
            body["scopes"] = list(self.scopes)
        return body


def _rfc3339(ms: int) -> str:
    """``2023-01-01T19:30:41.000Z``, as the secrets API writes times."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sp_secret_lifetime(raw: Any) -> int:
    """The ``lifetime`` of a new secret (a protobuf duration such as ``"7776000s"``) in whole seconds."""
    if raw is None:
        return MAX_SP_SECRET_LIFETIME_SECONDS
    match = _DURATION_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise _ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid lifetime: {str(raw)[:40]!r}.")
    seconds = int(match.group(1))
    if not 0 < seconds <= MAX_SP_SECRET_LIFETIME_SECONDS:
        raise _ApiError(
            400, "INVALID_PARAMETER_VALUE", "lifetime must be more than 0 and at most 730 days (63072000s)."
        )
    return seconds


def _sp_secret_page(owned: list[EmulatedSpSecret], query: dict[str, str]) -> dict[str, Any]:
    """One page of ``ListServicePrincipalSecretsResponse`` (``page_token`` is the offset, opaquely)."""
    try:
        size = int(query.get("page_size") or 100)
        start = int(query["page_token"], 16) if query.get("page_token") else 0
    except ValueError:
        raise _ApiError(400, "INVALID_PARAMETER_VALUE", "Invalid page_size or page_token.") from None
    size = max(1, min(size, 100))
    page = owned[start : start + size]
    listing: dict[str, Any] = {"secrets": [s.to_json() for s in page]}
    if start + size < len(owned):
        listing["next_page_token"] = f"{start + size:x}"
    return listing


# ------------------------------------------------------------------------------------------------ fleets


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _day_ms(dt: datetime) -> int:
    """Epoch ms of the UTC midnight starting ``dt``'s day (the form of ``last_used_day``)."""
    day = dt.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return _ms(day)


def _hex_id(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


_FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
    "olivia", "peggy", "rupert", "sybil", "trent", "uma", "victor", "wendy",
)  # fmt: skip
_SP_NAMES = (
    "etl-pipeline", "ml-serving", "dbt-prod", "airflow", "powerbi-refresh", "fivetran", "ci-deployer",
    "feature-store", "reverse-etl", "monitoring",
)  # fmt: skip
_COMMENTS = (
    "dbt prod", "airflow connection", "local dev", "notebook export", "CI pipeline", "", "Power BI refresh",
    "VS Code", "terraform", "ad-hoc analysis", "tableau", "jdbc", "migration script",
)  # fmt: skip
_SCOPE_SETS = (["sql"], ["sql", "unity-catalog"], ["jobs", "workspace"], ["model-serving"])


def seed_fleet(
    n_workspaces: int, tokens_per_workspace: int, *, now: datetime, seed: int = 0
) -> list[EmulatedWorkspace]:
    """A deterministic, realistic fleet of ``n_workspaces`` workspaces, ``tokens_per_workspace`` tokens each.

    Principals are shared across workspaces (same SCIM ids, as with identity federation); about a tenth of
    users and service principals are inactive, and a few tokens belong to owners no longer in SCIM. Tokens
    mix healthy, non-expiring, expired, stale, never-used (``last_used_day`` absent or 0), long-lived,
    expiring-soon, scoped and unscoped ones.
    """
    rng = random.Random(seed)
    now = now.astimezone(UTC)
    n_users = max(8, tokens_per_workspace // 2)
    n_sps = max(3, tokens_per_workspace // 20)
    used_ids: set[int] = set()

    def new_id() -> int:
        while True:
            candidate = rng.randrange(10**15, 10**16)
            if candidate not in used_ids:
                used_ids.add(candidate)
                return candidate

    def numbered(names: tuple[str, ...], k: int, sep: str) -> str:
        base, round_ = names[k % len(names)], k // len(names)
        return f"{base}{sep}{round_}" if round_ else base

    users = [
        EmulatedPrincipal(
            id=new_id(),
            kind="user",
            display_name=numbered(_FIRST_NAMES, k, " ").title(),
            user_name=f"{numbered(_FIRST_NAMES, k, '')}@example.com",
            active=rng.random() >= 0.1,
        )
        for k in range(n_users)
    ]
    sps = [
        EmulatedPrincipal(
            id=new_id(),
            kind="service_principal",
            display_name=numbered(_SP_NAMES, k, "-"),
            application_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            active=rng.random() >= 0.1,
        )
        for k in range(n_sps)
    ]
    ghosts = [
        EmulatedPrincipal(
            id=new_id(), kind="user", display_name=f"Former {k}", user_name=f"former{k}@example.com"
        )
        for k in range(3)
    ]
    fleet: list[EmulatedWorkspace] = []
    for i in range(n_workspaces):
        ws_id = 1_000_000_000_000_000 + i * 1_000_003 + rng.randrange(1_000_000)
        conf = {"enableTokensConfig": "false" if i % 7 == 6 else "true"}
        lifetime_choice = rng.choice([None, "90", "90", "365"])
        if lifetime_choice is not None:
            conf["maxTokenLifetimeDays"] = lifetime_choice
        ws = EmulatedWorkspace(
            name=f"ws-{i:02d}",
            workspace_id=ws_id,
            deployment_name=f"dbc-{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}",
            principals=[copy.copy(p) for p in users + sps],
            conf=conf,
            secret_scopes={"patbot"},
        )
        for j in range(tokens_per_workspace):
            ws.tokens.append(_seed_token(rng, ws_id, now, users, sps, ghosts, j))
        fleet.append(ws)
    return fleet


def _seed_token(
    rng: random.Random,
    ws_id: int,
    now: datetime,
    users: list[EmulatedPrincipal],
    sps: list[EmulatedPrincipal],
    ghosts: list[EmulatedPrincipal],
    index: int,
) -> EmulatedToken:
    kind = rng.random()
    owner = rng.choice(users) if rng.random() < 0.75 else rng.choice(sps)
    created = now - timedelta(days=rng.randint(1, 60), seconds=rng.randint(0, 86_399))
    lifetime: timedelta | None = timedelta(days=rng.choice([30, 60, 90]))
    last_used: datetime | None = now - timedelta(days=rng.randint(0, 5))
    never_used_zero = False
    if kind < 0.30:  # healthy
        pass
    elif kind < 0.45:  # non-expiring
        lifetime = None
        created = now - timedelta(days=rng.randint(5, 700))
        if rng.random() < 0.4:
            last_used = now - timedelta(days=rng.randint(30, 200))
    elif kind < 0.55:  # expired
        created = now - timedelta(days=rng.randint(100, 400))
        lifetime = timedelta(days=rng.choice([30, 60, 90]))
        last_used = created + timedelta(days=rng.randint(0, 29))
    elif kind < 0.67:  # stale
        created = now - timedelta(days=rng.randint(95, 170))
        lifetime = timedelta(days=365)
        last_used = now - timedelta(days=rng.randint(30, 89))
    elif kind < 0.77:  # never used
        created = now - timedelta(days=rng.randint(30, 200))
        lifetime = rng.choice([None, timedelta(days=365)])
        last_used = None
        never_used_zero = rng.random() < 0.5
    elif kind < 0.87:  # long-lived
        created = now - timedelta(days=rng.randint(1, 120))
        lifetime = timedelta(days=rng.choice([180, 365, 730]))
    elif kind < 0.93:  # expiring soon
        lifetime = timedelta(days=30)
        created = now - timedelta(days=30 - rng.randint(1, 6))
    else:  # owner gone from SCIM
        owner = rng.choice(ghosts)
        created = now - timedelta(days=rng.randint(100, 300))
        lifetime = None
        last_used = now - timedelta(days=rng.randint(40, 99))
    if last_used is not None and last_used < created:
        last_used = created
    scope_roll = rng.random()
    scopes = [] if scope_roll < 0.7 else ["all-apis"] if scope_roll < 0.85 else list(rng.choice(_SCOPE_SETS))
    last_used_day = _day_ms(last_used) if last_used is not None else (0 if never_used_zero else None)
    autoscope: dict[str, Any] = {}
    if (
        index % 10 == 3
    ):  # autoscope saw it use part of what it may call (no rng draw: the fleet stays the same)
        autoscope = {
            "autoscope_state": "AUTOSCOPE_STATE_COMPLETED",
            "inferred_scopes": (scopes or ["sql"])[:1],
        }
    elif index % 10 == 7:
        autoscope = {"autoscope_state": "AUTOSCOPE_STATE_BACKFILLED", "backfill_scopes": ["jobs:read"]}
    return EmulatedToken(
        token_id=_hex_id("seed", ws_id, index, rng.getrandbits(64)),
        owner_id=owner.id,
        created_by_username=owner.login,
        comment=rng.choice(_COMMENTS),
        creation_time=_ms(created),
        expiry_time=_ms(created + lifetime) if lifetime is not None else -1,
        last_used_day=last_used_day,
        scopes=scopes,
        workspace_id=ws_id,
        **autoscope,
    )


# (owner key, comment, created days ago, lifetime days or None, last used days ago or None, scopes)
_DemoRow = tuple[str, str, int, int | None, int | None, list[str]]

_DEMO_ROWS: dict[str, list[_DemoRow]] = {
    "prod": [
        ("alice", "dbt prod", 20, 90, 0, []),
        ("alice", "local dev", 400, None, 2, []),
        ("alice", "old laptop", 200, None, 120, []),
        ("bob", "Power BI refresh", 150, 365, 1, ["sql"]),
        ("bob", "notebook export", 40, 60, None, []),
        ("carol", "terraform", 100, 90, 95, ["all-apis"]),
        ("dave", "jdbc", 300, None, 45, []),
        ("etl-pipeline", "nightly ETL", 80, 90, 0, ["sql", "unity-catalog"]),
        ("etl-pipeline", "nightly ETL (old)", 500, None, 60, []),
        ("ml-serving", "model serving", 85, 90, 0, ["model-serving"]),
    ],
    "staging": [
        ("alice", "staging tests", 10, 30, 1, []),
        ("bob", "ad-hoc analysis", 95, None, 33, []),
        ("bob", "CI pipeline", 26, 30, 0, ["jobs", "workspace"]),
        ("carol", "VS Code", 5, 90, 0, []),
        ("carol", "migration script", 120, 90, 40, []),
        ("erin", "tableau", 60, None, None, []),
        ("etl-pipeline", "staging ETL", 30, 365, 0, []),
        ("ml-serving", "canary", 15, 90, 3, ["model-serving"]),
        ("ml-serving", "", 70, None, None, []),
        ("dave", "experiments", 250, 365, 200, []),
    ],
    "analytics": [
        ("alice", "tableau", 45, 90, 0, ["sql"]),
        ("bob", "jupyter", 12, 14, 5, []),
        ("carol", "Power BI", 200, 730, 0, ["sql"]),
        ("carol", "local dev", 365, None, 90, []),
        ("erin", "dashboards", 33, 90, 31, []),
        ("erin", "airflow connection", 90, 90, 0, []),
        ("etl-pipeline", "reverse ETL", 88, 90, 1, []),
        ("etl-pipeline", "backfill", 3, 7, None, []),
        ("ml-serving", "feature store", 180, None, 0, ["all-apis"]),
        ("dave", "notebook export", 20, 60, 19, []),
    ],
}


def demo_fleet(now: datetime) -> list[EmulatedWorkspace]:
    """Three hand-written workspaces, ``prod``, ``staging`` and ``analytics``, of ten tokens each.

    Users alice, bob, carol, erin (active) and dave (deactivated) ``@example.com``; service principals
    ``etl-pipeline`` and ``ml-serving``. ``prod`` caps lifetimes at 90 days, ``analytics`` at 365,
    ``staging`` has no cap. Two ``prod`` tokens share their first 10 characters (an ambiguous prefix).
    """
    now = now.astimezone(UTC)
    people = {
        "alice": ("Alice Anders", True),
        "bob": ("Bob Brown", True),
        "carol": ("Carol Chen", True),
        "dave": ("Dave Dunn", False),
        "erin": ("Erin Evans", True),
    }
    principals: dict[str, EmulatedPrincipal] = {}
    for n, (key, (display, active)) in enumerate(people.items()):
        principals[key] = EmulatedPrincipal(
            id=4_421_000_000_000_001 + n * 7919,
            kind="user",
            display_name=display,
            user_name=f"{key}@example.com",
            active=active,
        )
    for n, key in enumerate(("etl-pipeline", "ml-serving")):
        principals[key] = EmulatedPrincipal(
            id=5_133_000_000_000_001 + n * 104_729,
            kind="service_principal",
            display_name=key,
            application_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{key}.example.com")),
        )
    settings = {
        "prod": (1_234_567_890_123_456, "dbc-3f8a91c2-7d1e", {"maxTokenLifetimeDays": "90"}),
        "staging": (2_345_678_901_234_567, "dbc-5b20e7aa-0c44", {}),
        "analytics": (3_456_789_012_345_678, "dbc-9e61d3f0-b2a8", {"maxTokenLifetimeDays": "365"}),
    }
    fleet: list[EmulatedWorkspace] = []
    for name, (ws_id, deployment, extra_conf) in settings.items():
        ws = EmulatedWorkspace(
            name=name,
            workspace_id=ws_id,
            deployment_name=deployment,
            principals=[copy.copy(p) for p in principals.values()],
            conf={"enableTokensConfig": "true", **extra_conf},
            secret_scopes={"patbot"},
        )
        for n, (owner_key, comment, created_days, lifetime, used_days, scopes) in enumerate(_DEMO_ROWS[name]):
            owner = principals[owner_key]
            created = now - timedelta(days=created_days, hours=3, minutes=7 * n)
            ws.tokens.append(
                EmulatedToken(
                    token_id=_hex_id("demo", name, n),
                    owner_id=owner.id,
                    created_by_username=owner.login,
                    comment=comment,
                    creation_time=_ms(created),
                    expiry_time=_ms(created + timedelta(days=lifetime)) if lifetime is not None else -1,
                    last_used_day=_day_ms(now - timedelta(days=used_days)) if used_days is not None else None,
                    scopes=list(scopes),
                    workspace_id=ws_id,
                )
            )
        fleet.append(ws)
    prod = fleet[0].tokens
    prod[2].token_id = prod[1].token_id[:10] + prod[2].token_id[10:]
    return fleet


def iter_tokens(fleet: Iterable[EmulatedWorkspace]) -> Iterator[tuple[EmulatedWorkspace, EmulatedToken]]:
    """Every (workspace, token) pair of a fleet."""
    for ws in fleet:
        for token in ws.tokens:
            yield ws, token
