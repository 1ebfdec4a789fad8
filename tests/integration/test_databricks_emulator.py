"""The Databricks emulator, driven by the real databricks-sdk clients (PAT auth, no monkeypatching)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceDoesNotExist,
    TemporarilyUnavailable,
    Unauthenticated,
)

from bot.sandbox.databricks_emulator import (
    ACCOUNT,
    DEFAULT_ADMIN_TOKEN,
    MAX_TOKENS_PER_PRINCIPAL,
    DatabricksEmulator,
    EmulatedPrincipal,
    EmulatedToken,
    EmulatedWorkspace,
    demo_fleet,
    seed_fleet,
)

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep developer credentials (env vars) out of the SDK's unified auth."""
    import os

    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "AZURE_", "GOOGLE_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu() -> Iterator[DatabricksEmulator]:
    with DatabricksEmulator(demo_fleet(NOW)) as emulator:
        yield emulator


def client(host: str, token: str = DEFAULT_ADMIN_TOKEN, retry: int = 5) -> WorkspaceClient:
    # WorkspaceClient(...) has no retry_timeout_seconds keyword: it is set through Config.
    return WorkspaceClient(config=Config(host=host, token=token, retry_timeout_seconds=retry))


def sp_of(ws: EmulatedWorkspace, name: str) -> EmulatedPrincipal:
    return next(p for p in ws.principals if p.display_name == name)


# ------------------------------------------------------------------------------------------- tokens


def test_list_tokens_maps_every_field(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("prod"))
    listed = {t.token_id: t for t in w.token_management.list()}
    state = emu.workspace("prod")
    assert len(listed) == len(state.tokens) == 10
    for tok in state.tokens:
        info = listed[tok.token_id]
        assert info.owner_id == tok.owner_id
        assert info.created_by_id == tok.owner_id
        assert info.created_by_username == tok.created_by_username
        assert info.comment == tok.comment
        assert info.creation_time == tok.creation_time
        assert info.expiry_time == tok.expiry_time
        assert info.last_used_day == tok.last_used_day
        assert (info.scopes or []) == tok.scopes
        assert info.workspace_id == state.workspace_id
    assert any(t.expiry_time == -1 for t in listed.values())
    assert any(t.scopes for t in listed.values())


def test_list_filters_by_creator(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("prod"))
    alice = [t for t in w.token_management.list(created_by_username="alice@example.com")]
    assert alice and {t.created_by_username for t in alice} == {"alice@example.com"}
    by_id = list(w.token_management.list(created_by_id=alice[0].owner_id))
    assert {t.token_id for t in by_id} == {t.token_id for t in alice}


def test_get_then_delete_then_404(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("staging"))
    token_id = emu.workspace("staging").tokens[0].token_id
    assert w.token_management.get(token_id).token_info.token_id == token_id
    w.token_management.delete(token_id)
    assert emu.workspace("staging").token(token_id) is None
    with pytest.raises(NotFound) as err:
        w.token_management.get(token_id)
    assert isinstance(err.value, ResourceDoesNotExist)
    with pytest.raises(ResourceDoesNotExist):
        w.token_management.delete(token_id)
    assert emu.count_requests("DELETE", "/api/2.0/token-management/tokens/", workspace="staging") == 2


def test_concurrent_deletes_of_one_token_succeed_once(emu: DatabricksEmulator) -> None:
    token_id = emu.workspace("prod").tokens[3].token_id
    url = f"{emu.host_of('prod')}/api/2.0/token-management/tokens/{token_id}"
    statuses: list[int] = []

    def delete() -> None:
        r = requests.delete(url, headers={"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}, timeout=5)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=delete) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [404] * 7


# ---------------------------------------------------------------------------------------- OBO tokens


def test_create_obo_token(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("prod"))
    state = emu.workspace("prod")
    sp = sp_of(state, "etl-pipeline")
    before = time.time() * 1000
    created = w.token_management.create_obo_token(
        application_id=sp.application_id, lifetime_seconds=30 * 86_400, comment="rotated by patbot"
    )
    assert created.token_value and created.token_value.startswith("dapi")
    info = created.token_info
    assert info.owner_id == sp.id
    assert info.created_by_username == state.caller_user_name
    assert info.comment == "rotated by patbot"
    assert info.expiry_time - info.creation_time == 30 * 86_400 * 1000
    assert info.creation_time >= before - 1000
    assert info.last_used_day is None
    # listed afterwards, but the value is never served again nor recorded anywhere
    assert info.token_id in {t.token_id for t in w.token_management.list()}
    again = w.token_management.get(info.token_id).token_info
    assert again.owner_id == sp.id
    assert created.token_value not in json.dumps([r.body for r in emu.requests])
    assert created.token_value not in repr(state)


def test_obo_errors(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("prod"))
    state = emu.workspace("prod")
    sp = sp_of(state, "ml-serving")
    with pytest.raises(ResourceDoesNotExist):
        w.token_management.create_obo_token(application_id="00000000-0000-0000-0000-000000000000")
    # prod caps lifetimes at 90 days; no lifetime at all is refused too
    with pytest.raises(InvalidParameterValue) as err:
        w.token_management.create_obo_token(application_id=sp.application_id, lifetime_seconds=91 * 86_400)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(InvalidParameterValue):
        w.token_management.create_obo_token(application_id=sp.application_id)
    # staging has no cap: a non-expiring token is allowed
    staging = client(emu.host_of("staging"))
    no_expiry = staging.token_management.create_obo_token(application_id=sp.application_id)
    assert no_expiry.token_info.expiry_time == -1

    with emu.lock:
        state.obo_enabled = False
    with pytest.raises(PermissionDenied, match="On-behalf-of"):
        w.token_management.create_obo_token(application_id=sp.application_id, lifetime_seconds=3600)
    with emu.lock:
        state.obo_enabled = True
        held = sum(1 for t in state.tokens if t.owner_id == sp.id)
        for n in range(MAX_TOKENS_PER_PRINCIPAL - held):
            state.tokens.append(
                EmulatedToken(f"filler{n:058d}", sp.id, sp.login, "", 0, workspace_id=state.workspace_id)
            )
    with pytest.raises(BadRequest) as quota:
        w.token_management.create_obo_token(application_id=sp.application_id, lifetime_seconds=3600)
    assert quota.value.error_code == "QUOTA_EXCEEDED"


# --------------------------------------------------------------------------------- workspace-conf


def test_workspace_conf_get_and_set(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("staging"))
    conf = w.workspace_conf.get_status(keys="enableTokensConfig,maxTokenLifetimeDays")
    assert conf == {"enableTokensConfig": "true", "maxTokenLifetimeDays": None}
    w.workspace_conf.set_status({"maxTokenLifetimeDays": "30"})
    assert w.workspace_conf.get_status(keys="maxTokenLifetimeDays") == {"maxTokenLifetimeDays": "30"}
    assert emu.workspace("staging").conf["maxTokenLifetimeDays"] == "30"
    with pytest.raises(InvalidParameterValue):
        w.workspace_conf.set_status({"maxTokenLifetimeDays": "forever"})
    with pytest.raises(InvalidParameterValue):
        w.workspace_conf.get_status(keys="noSuchKey")


# ------------------------------------------------------------------------------------------- SCIM


def test_scim_paging_over_many_principals() -> None:
    fleet = seed_fleet(1, 300, now=NOW, seed=7)
    ws = fleet[0]
    ws.principals += [
        EmulatedPrincipal(
            id=9_000_000_000_000_000 + n,
            kind="service_principal",
            display_name=f"bulk-sp-{n}",
            application_id=f"00000000-0000-4000-8000-{n:012d}",
        )
        for n in range(120)
    ]
    n_users = sum(1 for p in ws.principals if p.kind == "user")
    n_sps = len(ws.principals) - n_users
    assert n_users > 100 and n_sps > 100
    with DatabricksEmulator(fleet) as emu:
        w = client(emu.host_of(ws.name))
        users = list(w.users.list())
        sps = list(w.service_principals.list())
        assert len(users) == n_users and len({u.id for u in users}) == n_users
        assert len(sps) == n_sps
        assert all(u.user_name and u.user_name.endswith("@example.com") for u in users)
        assert {u.active for u in users} == {True, False}
        # the SDK always starts at startIndex=1 with count=10000 and pages until an empty page
        pages = [r.query for r in emu.requests if r.path.endswith("/Users")]
        assert [p["startIndex"] for p in pages] == ["1", "101", str(n_users + 1)]
        assert {p["count"] for p in pages} == {"10000"}

        target = sps[-1]
        found = list(w.service_principals.list(filter=f'applicationId eq "{target.application_id}"'))
        assert [s.id for s in found] == [target.id]
        named = list(w.service_principals.list(filter='displayName eq "bulk-sp-7"'))
        assert [s.application_id for s in named] == ["00000000-0000-4000-8000-000000000007"]
        alice = list(w.users.list(filter='userName eq "ALICE@example.com"'))
        assert [u.user_name for u in alice] == ["alice@example.com"]
        either = list(w.users.list(filter='userName eq "alice@example.com" or userName sw "bob@"'))
        assert {u.user_name for u in either} == {"alice@example.com", "bob@example.com"}
        assert w.users.get(users[0].id).user_name == users[0].user_name
        with pytest.raises(NotFound):
            w.users.get("42")
        with pytest.raises(BadRequest):
            list(w.users.list(filter="userName eq"))


def test_scim_id_filters_answer_in_one_page_and_refuse_over_200_nodes() -> None:
    fleet = seed_fleet(1, 600, now=NOW, seed=3)
    ws = fleet[0]
    users = [p for p in ws.principals if p.kind == "user"]
    assert len(users) > 150
    with DatabricksEmulator(fleet) as emu:
        w = client(emu.host_of(ws.name))
        wanted = [str(u.id) for u in users[:100]] + ["1"]  # 101 terms and 100 `or`s: 201 nodes
        with pytest.raises(BadRequest, match="200 nodes"):
            w.api_client.do(
                "GET",
                "/api/2.0/preview/scim/v2/Users",
                query={"filter": " or ".join(f'id eq "{i}"' for i in wanted)},
            )
        batch = " or ".join(f'id eq "{i}"' for i in [*wanted[:50], "1"])
        page = w.api_client.do(
            "GET",
            "/api/2.0/preview/scim/v2/Users",
            query={"filter": batch, "attributes": "id,userName", "count": 10000},
        )
        assert isinstance(page, dict)
        assert page["totalResults"] == 50 and {r["id"] for r in page["Resources"]} == set(wanted[:50])
        assert all(set(r) == {"id", "userName"} for r in page["Resources"])
        service_principals = w.api_client.do(
            "GET", "/api/2.0/preview/scim/v2/ServicePrincipals", query={"filter": batch}
        )
        assert isinstance(service_principals, dict) and service_principals["totalResults"] == 0


# ---------------------------------------------------------------------------------------- secrets


def test_put_secret(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("analytics"))
    w.secrets.put_secret("patbot", "etl-pipeline", string_value="s3cr3t-value")
    state = emu.workspace("analytics")
    assert state.secrets[("patbot", "etl-pipeline")] == "s3cr3t-value"
    assert "s3cr3t-value" not in json.dumps([r.body for r in emu.requests])
    assert "s3cr3t-value" not in repr(state)
    assert [s.name for s in w.secrets.list_scopes()] == ["patbot"]
    with pytest.raises(ResourceDoesNotExist):
        w.secrets.put_secret("no-such-scope", "k", string_value="v")


# ------------------------------------------------------------------------------ faults and knobs


def test_forbidden_fault(emu: DatabricksEmulator) -> None:
    emu.fail("prod", "/api/2.0/token-management", 403, times=1)
    w = client(emu.host_of("prod"))
    with pytest.raises(PermissionDenied) as err:
        list(w.token_management.list())
    assert err.value.error_code == "PERMISSION_DENIED"
    assert len(list(w.token_management.list())) == 10  # the fault was used up


def test_rate_limit_then_success_obeys_retry_after(emu: DatabricksEmulator) -> None:
    emu.fail("prod", "/api/2.0/token-management/tokens", 429, times=1, retry_after=1)
    w = client(emu.host_of("prod"))
    started = time.monotonic()
    assert len(list(w.token_management.list())) == 10
    assert time.monotonic() - started >= 1.0
    statuses = [r.status for r in emu.requests if r.path == "/api/2.0/token-management/tokens"]
    assert statuses == [429, 200]


def test_persistent_503_exhausts_the_retry_budget(emu: DatabricksEmulator) -> None:
    emu.fail("prod", "/api/2.0/token-management", 503, retry_after=1)
    w = client(emu.host_of("prod"), retry=2)
    started = time.monotonic()
    # the SDK raises the builtin TimeoutError, chained to the last TemporarilyUnavailable
    with pytest.raises(TimeoutError) as err:
        list(w.token_management.list())
    assert isinstance(err.value.__cause__, TemporarilyUnavailable)
    assert time.monotonic() - started < 6
    assert emu.count_requests("GET", "/api/2.0/token-management") >= 2
    emu.clear_faults()
    assert len(list(w.token_management.list())) == 10


def test_wrong_bearer_is_unauthenticated(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("prod"), token="dapi-wrong")
    with pytest.raises(Unauthenticated) as err:
        list(w.token_management.list())
    assert err.value.error_code == "UNAUTHENTICATED"
    raw = requests.get(f"{emu.host_of('prod')}/api/2.0/token-management/tokens", timeout=5)
    assert raw.status_code == 401 and raw.json()["error_code"] == "UNAUTHENTICATED"


def test_unknown_endpoint(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("prod"))
    with pytest.raises(NotFound) as err:
        w.api_client.do("GET", "/api/2.0/no/such/thing")
    assert err.value.error_code == "ENDPOINT_NOT_FOUND"


def test_latency_knob(emu: DatabricksEmulator) -> None:
    w = client(emu.host_of("analytics"))
    emu.set_latency("analytics", 0.3)
    started = time.monotonic()
    w.workspace_conf.get_status(keys="enableTokensConfig")
    assert time.monotonic() - started >= 0.3
    emu.set_latency("analytics", 0)
    started = time.monotonic()
    w.workspace_conf.get_status(keys="enableTokensConfig")
    assert time.monotonic() - started < 0.3


def test_take_down_refuses_connections_until_brought_up(emu: DatabricksEmulator) -> None:
    host = emu.host_of("staging")
    w = client(host, retry=1)  # built while up: the host-metadata probe at construction succeeds
    emu.take_down("staging")
    assert not emu.is_up("staging") and emu.is_up("prod")
    parts = urlsplit(host)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    with pytest.raises(TimeoutError) as err:
        list(w.token_management.list())
    assert isinstance(err.value.__cause__, requests.ConnectionError)
    assert len(list(client(emu.host_of("prod")).token_management.list())) == 10  # others unaffected
    emu.bring_up("staging")
    assert emu.host_of("staging") == host
    assert len(list(w.token_management.list())) == 10


# ---------------------------------------------------------------------------------------- account


def test_account_client_lists_workspaces(emu: DatabricksEmulator) -> None:
    a = AccountClient(host=emu.account_host, account_id=emu.account_id, token=DEFAULT_ADMIN_TOKEN)
    assert a.config.auth_type == "pat"
    listed = list(a.workspaces.list())
    assert [x.workspace_name for x in listed] == ["prod", "staging", "analytics"]
    for item, name in zip(listed, emu.names, strict=True):
        state = emu.workspace(name)
        assert item.workspace_id == state.workspace_id
        assert item.deployment_name == state.deployment_name
        assert item.workspace_status is not None and item.workspace_status.value == "RUNNING"
        assert emu.host_for_deployment(item.deployment_name) == emu.host_of(name)
    assert a.workspaces.get(listed[1].workspace_id).workspace_name == "staging"
    emu.fail(ACCOUNT, "/api/2.0/accounts", 403, times=1)
    with pytest.raises(PermissionDenied):
        list(a.workspaces.list())
    wrong = AccountClient(host=emu.account_host, account_id=emu.account_id, token="nope")
    with pytest.raises(Unauthenticated):
        list(wrong.workspaces.list())


def test_well_known_needs_no_auth(emu: DatabricksEmulator) -> None:
    meta = requests.get(f"{emu.host_of('prod')}/.well-known/databricks-config", timeout=5).json()
    assert meta["workspace_id"] == str(emu.workspace("prod").workspace_id)
    w = client(emu.host_of("prod"))
    assert w.config.workspace_id == meta["workspace_id"]
    assert emu.workspace(emu.host_of("prod") + "/") is emu.workspace("prod")


# ----------------------------------------------------------------------------------------- fleets


def test_seed_fleet_is_deterministic_and_varied() -> None:
    one = seed_fleet(3, 200, now=NOW, seed=1)
    two = seed_fleet(3, 200, now=NOW, seed=1)
    assert [[t.to_json() for t in ws.tokens] for ws in one] == [
        [t.to_json() for t in ws.tokens] for ws in two
    ]
    assert [ws.tokens[0].token_id for ws in seed_fleet(3, 200, now=NOW, seed=2)] != [
        ws.tokens[0].token_id for ws in one
    ]
    now_ms = int(NOW.timestamp() * 1000)
    tokens = [t for ws in one for t in ws.tokens]
    assert len({t.token_id for t in tokens}) == len(tokens) == 600
    assert len({ws.workspace_id for ws in one}) == 3
    principals = {p.id: p for p in one[0].principals}
    assert any(t.expiry_time == -1 for t in tokens)
    assert any(0 < t.expiry_time < now_ms for t in tokens)
    assert any(t.last_used_day is None for t in tokens) and any(t.last_used_day == 0 for t in tokens)
    assert any(t.last_used_day and now_ms - t.last_used_day >= 30 * 86_400_000 for t in tokens)
    assert any(t.expiry_time - t.creation_time > 180 * 86_400_000 for t in tokens)
    assert any(principals[t.owner_id].kind == "service_principal" for t in tokens if t.owner_id in principals)
    assert any(not principals[t.owner_id].active for t in tokens if t.owner_id in principals)
    assert any(t.owner_id not in principals for t in tokens)
    assert any(t.scopes == ["all-apis"] for t in tokens) and any(t.scopes == [] for t in tokens)
    assert any(t.scopes and t.scopes != ["all-apis"] for t in tokens)
    for t in tokens:
        assert t.creation_time <= now_ms
        if t.last_used_day:
            assert t.last_used_day % 86_400_000 == 0 and t.last_used_day <= now_ms
            assert t.last_used_day >= t.creation_time - 86_400_000
        assert t.expiry_time == -1 or t.expiry_time > t.creation_time


def test_demo_fleet_shape() -> None:
    fleet = demo_fleet(NOW)
    assert [ws.name for ws in fleet] == ["prod", "staging", "analytics"]
    assert all(len(ws.tokens) == 10 for ws in fleet)
    emails = {p.user_name for p in fleet[0].principals if p.kind == "user"}
    assert {"alice@example.com", "bob@example.com", "carol@example.com"} <= emails
    sps = {p.display_name for p in fleet[0].principals if p.kind == "service_principal"}
    assert sps == {"etl-pipeline", "ml-serving"}
    prod_ids = [t.token_id for t in fleet[0].tokens]
    assert len(set(prod_ids)) == 10
    assert len({i[:8] for i in prod_ids}) == 9  # one ambiguous 8-character prefix
    assert all(t.expiry_time == -1 or t.expiry_time > t.creation_time for ws in fleet for t in ws.tokens)
    assert fleet[0].tokens[0].creation_time < int((NOW - timedelta(days=1)).timestamp() * 1000)


def test_keep_alive_connections_are_reused_and_cut_by_take_down() -> None:
    with DatabricksEmulator(demo_fleet(NOW), keep_alive=True) as emu:
        session = requests.Session()
        url = emu.host_of("prod") + "/api/2.0/token-management/tokens"
        headers = {"Authorization": f"Bearer {DEFAULT_ADMIN_TOKEN}"}
        first = session.get(url, headers=headers, timeout=5)
        second = session.get(url, headers=headers, timeout=5)
        assert first.status_code == second.status_code == 200
        assert first.raw.version == 11 and second.raw.version == 11
        emu.take_down("prod")
        with pytest.raises(requests.ConnectionError):
            session.get(url, headers=headers, timeout=5)
