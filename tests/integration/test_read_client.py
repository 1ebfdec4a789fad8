"""The audit's reads (`bot.read_client`) over real HTTP against the emulated Databricks: the SDK's retry rules
and error classes, kept-alive connections replaced when the server closed them, the environment's proxy."""

from __future__ import annotations

import base64
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from databricks.sdk import errors as sdk_errors

from bot.databricks import WorkspaceForbidden, WorkspaceUnavailable, translate_error
from bot.read_client import Network, ReadClient
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator
from tests.fixtures.proxy import Proxy

pytestmark = pytest.mark.integration

CONF = "/api/2.0/workspace-conf"
KEYS = {"keys": "enableTokensConfig,maxTokenLifetimeDays"}


def client(
    host: str, *, retry: float = 5, timeout: float = 2, network: Network | None = None, token: str = ""
) -> ReadClient:
    bearer = token or DEFAULT_ADMIN_TOKEN
    return ReadClient(
        host,
        lambda: {"Authorization": f"Bearer {bearer}"},
        user_agent="patbot-test",
        http_timeout_seconds=timeout,
        retry_timeout_seconds=retry,
        network=network,
    )


def conf_calls(databricks: DatabricksEmulator, name: str = "prod") -> int:
    return databricks.count_requests("GET", CONF, workspace=name)


def test_reads_json_and_bytes(databricks: DatabricksEmulator) -> None:
    reads = client(databricks.host_of("prod"))
    conf = reads.get_json(CONF, KEYS)
    listing = reads.get_bytes("/api/2.0/token-management/tokens")
    assert set(conf) == {"enableTokensConfig", "maxTokenLifetimeDays"}
    assert listing.startswith(b"{") and b'"token_infos"' in listing
    assert [r.query for r in databricks.requests if r.path == CONF] == [KEYS]


def test_a_429_is_waited_out_as_the_sdk_does(databricks: DatabricksEmulator) -> None:
    databricks.fail("prod", CONF, 429, times=1, retry_after=0)
    assert "enableTokensConfig" in client(databricks.host_of("prod")).get_json(CONF, KEYS)
    assert conf_calls(databricks) == 2


def test_a_503_is_retried_as_the_sdk_does(databricks: DatabricksEmulator) -> None:
    databricks.fail("prod", CONF, 503, times=1, retry_after=0)
    assert "enableTokensConfig" in client(databricks.host_of("prod")).get_json(CONF, KEYS)
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
        client(databricks.host_of("prod")).get_json(CONF, KEYS)
    assert conf_calls(databricks) == 1


def test_a_wrong_token_is_refused_without_showing_it(
    databricks: DatabricksEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "dapi" + "0123456789abcdef" * 2
    caplog.set_level(logging.DEBUG)
    with pytest.raises(sdk_errors.DatabricksError) as raised:
        client(databricks.host_of("prod"), token=secret).get_json(CONF, KEYS)
    mapped = translate_error(raised.value, "prod", "reading the token settings")
    assert isinstance(mapped, WorkspaceForbidden)
    for text in (str(raised.value), repr(raised.value), mapped.user_message, caplog.text):
        assert secret not in text


def test_an_unreachable_workspace_fails_within_its_budget(databricks: DatabricksEmulator) -> None:
    host = databricks.host_of("prod")
    databricks.take_down("prod")
    with pytest.raises(TimeoutError) as raised:
        client(host, retry=1).get_json(CONF, KEYS)
    assert isinstance(raised.value.__cause__, requests.ConnectionError)
    mapped = translate_error(raised.value, "prod", "reading the token settings")
    assert isinstance(mapped, WorkspaceUnavailable) and "cannot connect" in mapped.user_message


def test_an_answer_slower_than_the_timeout_is_a_timeout(databricks: DatabricksEmulator) -> None:
    databricks.set_latency("prod", 1.0)
    with pytest.raises(TimeoutError) as raised:
        client(databricks.host_of("prod"), retry=0.5, timeout=0.3).get_json(CONF, KEYS)
    assert isinstance(raised.value.__cause__, requests.ReadTimeout)
    assert "timed out" in translate_error(raised.value, "prod", "reading").user_message


def test_a_kept_alive_connection_the_server_closed_is_replaced_at_once() -> None:
    """Between two reads the server closed the idle connection: the next GET goes out once, on a new one."""
    from datetime import UTC, datetime

    from bot.sandbox.databricks_emulator import demo_fleet

    with DatabricksEmulator(demo_fleet(datetime.now(UTC)), keep_alive=True) as databricks:
        reads = client(databricks.host_of("prod"), retry=0.2)
        reads.get_json(CONF, KEYS)
        databricks.take_down("prod")  # closes the kept-alive connection too
        databricks.bring_up("prod")
        assert "enableTokensConfig" in reads.get_json(CONF, KEYS)
        assert conf_calls(databricks) == 2


def test_reads_go_through_the_proxy_of_the_environment(databricks: DatabricksEmulator, proxy: Proxy) -> None:
    host = databricks.host_of("prod")
    with_login = proxy.url.replace("http://", "http://ops:p%40ss@")
    network = Network(proxies={"http": with_login})
    assert "enableTokensConfig" in client(host, network=network).get_json(CONF, KEYS)
    [(asked, login)] = proxy.seen
    assert asked.startswith(f"{host}{CONF}?keys=")
    assert login == "Basic " + base64.b64encode(b"ops:p@ss").decode()
    assert conf_calls(databricks) == 1


def test_no_proxy_sends_the_reads_directly(databricks: DatabricksEmulator, proxy: Proxy) -> None:
    network = Network(proxies={"http": proxy.url, "no": "localhost,127.0.0.1"})
    assert "enableTokensConfig" in client(databricks.host_of("prod"), network=network).get_json(CONF, KEYS)
    assert proxy.seen == []


def test_the_network_is_read_from_the_environment_as_requests_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", ".internal.corp")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp/ca.pem")
    network = Network.from_environment()
    assert network.ca_bundle == "/etc/corp/ca.pem"
    assert network.proxy_for("https://adb-1.azuredatabricks.net") == "http://proxy.corp:3128"
    assert network.proxy_for("https://ws.internal.corp") is None


def test_a_redirect_is_an_answer_not_retried() -> None:
    """A workspace URL that redirects (to a login page, say) fails at once, naming where it was sent."""
    calls: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            calls.append(self.path)
            self.send_response(302)
            self.send_header("Location", "https://login.example.com/sso")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(sdk_errors.DatabricksError) as raised:
            client(f"http://127.0.0.1:{server.server_address[1]}", retry=5).get_json(CONF, KEYS)
    finally:
        server.shutdown()
        server.server_close()
    assert len(calls) == 1
    mapped = translate_error(raised.value, "prod", "reading the token settings")
    assert "HTTP 302" in mapped.user_message and "login.example.com" in mapped.user_message
