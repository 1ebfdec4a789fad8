"""The emulator's service-principal OAuth secrets (workspace proxy), driven by databricks-sdk's own client."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist

from bot.sandbox.databricks_emulator import (
    DEFAULT_ADMIN_TOKEN,
    MAX_SECRETS_PER_PRINCIPAL,
    DatabricksEmulator,
    EmulatedPrincipal,
    EmulatedSpSecret,
    demo_fleet,
)

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)
PATH = "/api/2.0/accounts/servicePrincipals/{id}/credentials/secrets"


@pytest.fixture(autouse=True)
def _isolated_sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "AZURE_", "GOOGLE_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu() -> Iterator[DatabricksEmulator]:
    with DatabricksEmulator(demo_fleet(NOW), clock=lambda: NOW) as emulator:
        yield emulator


def client(emu: DatabricksEmulator, ws: str = "prod") -> WorkspaceClient:
    return WorkspaceClient(
        config=Config(host=emu.host_of(ws), token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=5)
    )


def principal(emu: DatabricksEmulator, name: str, ws: str = "prod") -> EmulatedPrincipal:
    return next(p for p in emu.workspace(ws).principals if p.display_name == name or p.user_name == name)


def test_create_answers_the_secret_once_and_list_never(emu: DatabricksEmulator) -> None:
    w, sp = client(emu), principal(emu, "ml-serving")
    created = w.service_principal_secrets_proxy.create(
        str(sp.id), lifetime="7776000s", scopes=["sql", "jobs:read"]
    )
    assert created.secret and created.id
    assert created.create_time == "2025-03-10T15:30:00.000Z"
    assert created.expire_time == "2025-06-08T15:30:00.000Z"  # 90 days later
    assert created.scopes == ["sql", "jobs:read"] and created.status == "ACTIVE"

    listed = list(w.service_principal_secrets_proxy.list(str(sp.id)))
    assert [s.id for s in listed] == [created.id]
    assert listed[0].expire_time == created.expire_time and listed[0].scopes == ["sql", "jobs:read"]
    raw = w.api_client.do("GET", PATH.format(id=sp.id))
    assert "secret" not in raw["secrets"][0], "list never carries the value"
    assert created.secret not in json.dumps([r.body for r in emu.requests])
    assert created.secret not in repr(emu.workspace("prod"))
    assert emu.count_requests("POST", PATH.format(id=sp.id), "prod") == 1


def test_default_lifetime_is_730_days_and_limits_are_enforced(emu: DatabricksEmulator) -> None:
    w, sp = client(emu), principal(emu, "etl-pipeline")
    default = w.service_principal_secrets_proxy.create(str(sp.id))
    assert default.expire_time == "2027-03-10T15:30:00.000Z" and not default.scopes
    for bad in ("731d", "63072001s", "0s", "-5s", "soon"):
        with pytest.raises(InvalidParameterValue):
            w.service_principal_secrets_proxy.create(str(sp.id), lifetime=bad)
    with pytest.raises(InvalidParameterValue):
        w.service_principal_secrets_proxy.create(str(sp.id), scopes=["no-such-scope"])
    for _ in range(MAX_SECRETS_PER_PRINCIPAL - 1):
        w.service_principal_secrets_proxy.create(str(sp.id), lifetime="3600s")
    with pytest.raises(InvalidParameterValue, match="at most 5"):
        w.service_principal_secrets_proxy.create(str(sp.id), lifetime="3600s")


def test_unknown_principals_and_users_are_not_found(emu: DatabricksEmulator) -> None:
    w = client(emu)
    for wanted in ("123", "not-a-number", str(principal(emu, "alice@example.com").id)):
        with pytest.raises(ResourceDoesNotExist):
            w.service_principal_secrets_proxy.create(wanted, lifetime="3600s")
        with pytest.raises(ResourceDoesNotExist):
            list(w.service_principal_secrets_proxy.list(wanted))


def test_list_pages_and_delete(emu: DatabricksEmulator) -> None:
    w, sp = client(emu), principal(emu, "ml-serving")
    start = int((NOW - timedelta(days=10)).timestamp() * 1000)
    with emu.lock:
        emu.workspace("prod").sp_secrets.extend(
            EmulatedSpSecret(f"s{n}", sp.id, start + n, start + n + 86_400_000) for n in range(5)
        )
    listed = [s.id for s in w.service_principal_secrets_proxy.list(str(sp.id), page_size=2)]
    assert listed == ["s0", "s1", "s2", "s3", "s4"]
    assert emu.count_requests("GET", PATH.format(id=sp.id)) == 3, "pages of two, ended without a token"
    w.service_principal_secrets_proxy.delete(str(sp.id), "s2")
    assert "s2" not in [s.id for s in w.service_principal_secrets_proxy.list(str(sp.id))]
    with pytest.raises(ResourceDoesNotExist):
        w.service_principal_secrets_proxy.delete(str(sp.id), "s2")
    assert list(client(emu, "staging").service_principal_secrets_proxy.list(str(sp.id))) == [], (
        "per workspace"
    )
