"""The audit's reads on one event loop (`bot.async_read_client`) over real HTTP: every case of
`test_read_client.py` for the async twin, plus its own HTTP/1.1 reader (chunked answers, answers read to the
end of the connection, interim answers), its bound on requests in flight, CONNECT tunnels through a proxy,
and where the auth headers are computed."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
import requests
from databricks.sdk import errors as sdk_errors
from databricks.sdk.errors.base import DatabricksError as SdkError

from bot.async_read_client import AsyncReadClient
from bot.databricks import WorkspaceForbidden, WorkspaceUnavailable, translate_error
from bot.read_client import CONNECTIONS_PER_WORKSPACE, Headers, Network
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator, demo_fleet
from tests.fixtures.proxy import Proxy

pytestmark = pytest.mark.integration

CONF = "/api/2.0/workspace-conf"
KEYS = {"keys": "enableTokensConfig,maxTokenLifetimeDays"}
T = TypeVar("T")


def client(
    host: str,
    *,
    retry: float = 5,
    timeout: float = 2,
    network: Network | None = None,
    token: str = "",
    connections: int = CONNECTIONS_PER_WORKSPACE,
    headers: Headers | None = None,
) -> AsyncReadClient:
    bearer = token or DEFAULT_ADMIN_TOKEN
    return AsyncReadClient(
        host,
        headers or (lambda: {"Authorization": f"Bearer {bearer}"}),
        user_agent="patbot-test",
        http_timeout_seconds=timeout,
        retry_timeout_seconds=retry,
        network=network,
        connections=connections,
    )


def on_loop(host: str, use: Callable[[AsyncReadClient], Awaitable[T]], **options: Any) -> T:
    """Build a client inside a fresh event loop (as the audit does), use it, close it."""

    async def run() -> T:
        reads = client(host, **options)
        try:
            return await use(reads)
        finally:
            await reads.aclose()

    return asyncio.run(run())


def get_json(host: str, path: str = CONF, query: Any = KEYS, **options: Any) -> Any:
    return on_loop(host, lambda reads: reads.get_json(path, query), **options)


def conf_calls(databricks: DatabricksEmulator, name: str = "prod") -> int:
    return databricks.count_requests("GET", CONF, workspace=name)


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A tiny threaded HTTP server on a free port; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


# ------------------------------------------------------------------------- the cases of test_read_client


def test_reads_json_and_bytes(databricks: DatabricksEmulator) -> None:
    async def both(reads: AsyncReadClient) -> tuple[Any, bytes | bytearray]:
        return await reads.get_json(CONF, KEYS), await reads.get_bytes("/api/2.0/token-management/tokens")

    conf, listing = on_loop(databricks.host_of("prod"), both)
    assert set(conf) == {"enableTokensConfig", "maxTokenLifetimeDays"}
    assert listing.startswith(b"{") and b'"token_infos"' in listing
    assert [r.query for r in databricks.requests if r.path == CONF] == [KEYS]


def test_a_429_is_waited_out_as_the_sdk_does(databricks: DatabricksEmulator) -> None:
    databricks.fail("prod", CONF, 429, times=1, retry_after=0)
    assert "enableTokensConfig" in get_json(databricks.host_of("prod"))
    assert conf_calls(databricks) == 2


def test_a_503_is_retried_as_the_sdk_does(databricks: DatabricksEmulator) -> None:
    databricks.fail("prod", CONF, 503, times=1, retry_after=0)
    assert "enableTokensConfig" in get_json(databricks.host_of("prod"))
    assert conf_calls(databricks) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, sdk_errors.BadRequest), (403, sdk_errors.PermissionDenied), (404, sdk_errors.NotFound)],
)
def test_a_refusal_raises_the_sdks_error_class_and_is_not_retried(
    databricks: DatabricksEmulator, status: int, error: type[Exception]
) -> None:
    databricks.fail("prod", CONF, status, times=1)
    with pytest.raises(error):
        get_json(databricks.host_of("prod"))
    assert conf_calls(databricks) == 1


def test_a_wrong_token_is_refused_without_showing_it(
    databricks: DatabricksEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "dapi" + "0123456789abcdef" * 2
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SdkError) as raised:
        get_json(databricks.host_of("prod"), token=secret)
    mapped = translate_error(raised.value, "prod", "reading the token settings")
    assert isinstance(mapped, WorkspaceForbidden)
    for text in (str(raised.value), repr(raised.value), mapped.user_message, caplog.text):
        assert secret not in text


def test_an_unreachable_workspace_fails_within_its_budget(databricks: DatabricksEmulator) -> None:
    host = databricks.host_of("prod")
    databricks.take_down("prod")
    with pytest.raises(TimeoutError) as raised:
        get_json(host, retry=1)
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    mapped = translate_error(raised.value, "prod", "reading the token settings")
    assert isinstance(mapped, WorkspaceUnavailable) and "cannot connect" in mapped.user_message


def test_an_answer_slower_than_the_timeout_is_a_timeout(databricks: DatabricksEmulator) -> None:
    databricks.set_latency("prod", 1.0)
    with pytest.raises(TimeoutError) as raised:
        get_json(databricks.host_of("prod"), retry=0.5, timeout=0.3)
    assert isinstance(raised.value.__cause__, requests.ReadTimeout)
    assert "timed out" in translate_error(raised.value, "prod", "reading").user_message


def test_a_kept_alive_connection_the_server_closed_is_replaced_at_once() -> None:
    """Between two reads the server closed the idle connection: the next GET goes out once, on a new one
    (a retry would sleep past the 0.2 s budget)."""
    with DatabricksEmulator(demo_fleet(datetime.now(UTC)), keep_alive=True) as databricks:

        async def twice(reads: AsyncReadClient) -> Any:
            await reads.get_json(CONF, KEYS)
            databricks.take_down("prod")  # closes the kept-alive connection too
            databricks.bring_up("prod")
            return await reads.get_json(CONF, KEYS)

        assert "enableTokensConfig" in on_loop(databricks.host_of("prod"), twice, retry=0.2)
        assert conf_calls(databricks) == 2


def test_a_new_connection_closed_without_an_answer_is_retried_as_the_sdk_does(
    databricks: DatabricksEmulator,
) -> None:
    databricks.lose_answer("prod", "GET", CONF, status=None, act=False)
    assert "enableTokensConfig" in get_json(databricks.host_of("prod"))
    assert conf_calls(databricks) == 2


# ------------------------------------------------------------------------------------------------ proxy


def test_reads_go_through_the_proxy_of_the_environment(databricks: DatabricksEmulator, proxy: Proxy) -> None:
    host = databricks.host_of("prod")
    with_login = proxy.url.replace("http://", "http://ops:p%40ss@")
    network = Network(proxies={"http": with_login})
    assert "enableTokensConfig" in get_json(host, network=network)
    [(asked, login)] = proxy.seen
    assert asked.startswith(f"{host}{CONF}?keys=")
    assert login == "Basic " + base64.b64encode(b"ops:p@ss").decode()
    assert conf_calls(databricks) == 1


def test_no_proxy_sends_the_reads_directly(databricks: DatabricksEmulator, proxy: Proxy) -> None:
    network = Network(proxies={"http": proxy.url, "no": "localhost,127.0.0.1"})
    assert "enableTokensConfig" in get_json(databricks.host_of("prod"), network=network)
    assert proxy.seen == []


@pytest.mark.parametrize("connect_status", [502, None], ids=["refused", "closed"])
def test_an_https_host_behind_a_proxy_is_tunnelled_with_connect(
    proxy: Proxy, connect_status: int | None
) -> None:
    proxy.connect_status = connect_status
    network = Network(proxies={"https": proxy.url.replace("http://", "http://ops:p%40ss@")})
    with pytest.raises(TimeoutError) as raised:
        get_json("https://adb-1.azuredatabricks.net", network=network, retry=0.1)
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    if connect_status == 502:
        assert "Tunnel connection failed: 502" in str(raised.value.__cause__)
    login = "Basic " + base64.b64encode(b"ops:p@ss").decode()
    assert proxy.seen == [("CONNECT adb-1.azuredatabricks.net:443 HTTP/1.1", login)]


def test_the_network_is_read_from_the_environment_as_requests_reads_it(
    monkeypatch: pytest.MonkeyPatch, proxy: Proxy
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", ".internal.corp,127.0.0.1")
    network = Network.from_environment()
    with pytest.raises(TimeoutError):
        get_json("https://adb-1.azuredatabricks.net", network=network, retry=0.1)
    with pytest.raises(TimeoutError) as raised:  # exempt: straight to a port nothing listens on
        get_json("https://127.0.0.1:9", network=network, retry=0.1)
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    assert [asked for asked, _ in proxy.seen] == ["CONNECT adb-1.azuredatabricks.net:443 HTTP/1.1"]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/corp/ca.pem")
    with pytest.raises(FileNotFoundError):  # the bundle named in the environment is the one loaded
        client("https://adb-1.azuredatabricks.net", network=Network.from_environment())


def test_a_redirect_is_an_answer_not_retried() -> None:
    """A workspace URL that redirects (to a login page, say) fails at once, naming where it was sent."""
    calls: list[str] = []

    class Redirect(Quiet):
        def do_GET(self) -> None:
            calls.append(self.path)
            self.send_response(302)
            self.send_header("Location", "https://login.example.com/sso")
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serve(Redirect) as url, pytest.raises(SdkError) as raised:
        get_json(url, retry=5)
    assert len(calls) == 1
    mapped = translate_error(raised.value, "prod", "reading the token settings")
    assert "HTTP 302" in mapped.user_message and "login.example.com" in mapped.user_message


# ---------------------------------------------------------------------------------- the HTTP/1.1 reader

RAW_ANSWERS = {
    "/chunked": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'7;ext=1\r\n{"a": [\r\n3\r\n1, \r\n3\r\n2]}\r\n0\r\nX-Checksum: 42\r\n\r\n',
    "/interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{"b": 2}',
    "/to-the-end": b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"c": [3, 3, 3]}',
    "/close": b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 8\r\n\r\n{"d": 4}',
    "/empty": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "/garbage": b"ICY 200 OK\r\n\r\n",
}


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """Answers `RAW_ANSWERS[path]` byte for byte; records (path, client port) per request."""
    seen: list[tuple[str, int]] = []

    class Raw(Quiet):
        def do_GET(self) -> None:
            seen.append((self.path, self.client_address[1]))
            answer = RAW_ANSWERS[self.path]
            self.wfile.write(answer)
            framed = b"Content-Length" in answer or b"chunked" in answer
            self.close_connection = not framed or b"Connection: close" in answer

    with serve(Raw) as url:
        yield url, seen


def read_twice(url: str, path: str, **options: Any) -> list[Any]:
    async def twice(reads: AsyncReadClient) -> list[Any]:
        return [await reads.get_json(path), await reads.get_json(path)]

    return on_loop(url, twice, **options)


def connections_used(seen: list[tuple[str, int]]) -> int:
    return len({port for _, port in seen})


def test_a_chunked_answer_is_read_with_its_trailers_and_the_connection_kept(
    raw_server: tuple[str, list[tuple[str, int]]],
) -> None:
    url, seen = raw_server
    assert read_twice(url, "/chunked") == [{"a": [1, 2]}] * 2
    assert len(seen) == 2 and connections_used(seen) == 1


def test_interim_answers_are_skipped(raw_server: tuple[str, list[tuple[str, int]]]) -> None:
    url, seen = raw_server
    assert read_twice(url, "/interim") == [{"b": 2}] * 2
    assert connections_used(seen) == 1


def test_an_answer_without_length_is_read_to_the_end_and_its_connection_not_reused(
    raw_server: tuple[str, list[tuple[str, int]]],
) -> None:
    url, seen = raw_server
    assert read_twice(url, "/to-the-end") == [{"c": [3, 3, 3]}] * 2
    assert len(seen) == 2 and connections_used(seen) == 2


def test_connection_close_is_honoured(raw_server: tuple[str, list[tuple[str, int]]]) -> None:
    url, seen = raw_server
    assert read_twice(url, "/close") == [{"d": 4}] * 2
    assert connections_used(seen) == 2


def test_an_empty_body_is_an_empty_object(raw_server: tuple[str, list[tuple[str, int]]]) -> None:
    url, _ = raw_server
    assert read_twice(url, "/empty") == [{}, {}]


def test_an_answer_that_is_not_http_is_a_connection_error(
    raw_server: tuple[str, list[tuple[str, int]]],
) -> None:
    url, _ = raw_server
    with pytest.raises(TimeoutError) as raised:
        get_json(url, "/garbage", None, retry=0.1)
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    assert "bad status line" in str(raised.value.__cause__)


# -------------------------------------------------------------------------------- connections and auth


def test_no_more_than_connections_requests_are_in_flight() -> None:
    lock = threading.Lock()
    load = {"now": 0, "most": 0}
    ports: set[int] = set()

    class Slow(Quiet):
        def do_GET(self) -> None:
            with lock:
                load["now"] += 1
                load["most"] = max(load["most"], load["now"])
                ports.add(self.client_address[1])
            time.sleep(0.05)
            with lock:
                load["now"] -= 1
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    async def forty(reads: AsyncReadClient) -> list[Any]:
        return await asyncio.gather(*(reads.get_json(f"/r/{i}") for i in range(40)))

    with serve(Slow) as url:
        answers = on_loop(url, forty, connections=4)
    assert answers == [{"ok": True}] * 40
    assert load["most"] == 4  # never more, and the client did use all four
    assert len(ports) == 4


def test_the_first_auth_headers_are_computed_off_the_loop_once(databricks: DatabricksEmulator) -> None:
    """The first call may fetch a token (blocking): in the executor, once, however many GETs wait for it;
    later calls hit the SDK's cached token, inline."""
    threads: list[int] = []

    def headers() -> dict[str, str]:
        threads.append(threading.get_ident())
        time.sleep(0.05)
        return {"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}

    async def reads_then_one_more(reads: AsyncReadClient) -> int:
        await asyncio.gather(*(reads.get_json(CONF, KEYS) for _ in range(8)))
        await reads.get_json(CONF, KEYS)
        return threading.get_ident()

    loop_thread = on_loop(databricks.host_of("prod"), reads_then_one_more, headers=headers)
    assert len(threads) == 9 and threads[0] != loop_thread
    assert threads[1:] == [loop_thread] * 8
    assert conf_calls(databricks) == 9


def test_aclose_closes_the_idle_connections() -> None:
    closed = threading.Event()

    class KeepAlive(Quiet):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def finish(self) -> None:
            closed.set()
            super().finish()

    async def read_close(reads: AsyncReadClient) -> tuple[bool, bool]:
        await reads.get_json("/x")
        await asyncio.sleep(0.1)
        before = closed.is_set()
        await reads.aclose()
        return before, await asyncio.to_thread(closed.wait, 2)

    with serve(KeepAlive) as url:
        assert on_loop(url, read_close) == (False, True)


def test_the_authorization_value_never_shows_in_errors_or_logs(
    databricks: DatabricksEmulator, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "dapi" + "fedcba9876543210" * 2
    caplog.set_level(logging.DEBUG)
    failures: list[BaseException] = []

    def failing(host: str, **options: Any) -> None:
        with pytest.raises(Exception) as raised:
            get_json(host, token=secret, **options)
        failures.append(raised.value)

    host = databricks.host_of("prod")
    failing(host)  # refused: 401
    databricks.set_latency("prod", 0.5)
    failing(host, timeout=0.1, retry=0.1)  # no answer in time
    databricks.set_latency("prod", 0)
    https = Network(proxies={"https": proxy.url})
    failing("https://adb-1.azuredatabricks.net", network=https, retry=0.1)  # tunnel refused
    databricks.take_down("prod")
    failing(host, retry=0.1)  # unreachable
    failing(host, headers=lambda: {"Authorization": f"Bearer {secret}\r\nX-Injected: 1"})
    kinds = [sdk_errors.Unauthenticated, TimeoutError, TimeoutError, TimeoutError, ValueError]
    assert [type(f) for f in failures] == kinds
    for failure in failures:
        chain: BaseException | None = failure
        while chain is not None:
            assert secret not in str(chain) and secret not in repr(chain)
            chain = chain.__cause__ or chain.__context__
    assert "Retrying" in caplog.text and secret not in caplog.text


# ------------------------------------------------------------------------------------- big answers


class Trickle(Quiet):
    """A 3 MiB answer in six pieces, `pause` seconds apart (a big token list over a slow link)."""

    pause = 0.3
    piece = b"x" * (512 * 1024)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(6 * len(self.piece)))
        self.end_headers()
        for _ in range(6):
            self.wfile.write(self.piece)
            self.wfile.flush()
            time.sleep(self.pause)


def test_a_big_answer_that_keeps_coming_is_read_whole_however_long_it_takes() -> None:
    """As `http.client`'s socket timeout: the timeout bounds a pause, not the whole answer (1.8 s here)."""
    with serve(Trickle) as url:
        body = on_loop(url, lambda reads: reads.get_bytes("/big"), timeout=1, retry=0.5)
    assert len(body) == 6 * len(Trickle.piece) and set(bytes(body[:10])) == {ord("x")}


def test_a_big_answer_that_stops_coming_is_a_timeout() -> None:
    class Stalls(Trickle):
        pause = 1.5

    with serve(Stalls) as url, pytest.raises(TimeoutError) as failed:
        on_loop(url, lambda reads: reads.get_bytes("/big"), timeout=1, retry=0.5)
    assert isinstance(failed.value.__cause__, requests.ReadTimeout)
