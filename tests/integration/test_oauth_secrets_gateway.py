"""`WorkspaceGateway`'s OAuth secrets: one POST whatever happens to its answer, and what the read-back shows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.databricks import (
    DatabricksNotFound,
    DatabricksRejected,
    SecretValueLost,
    WorkspaceGateway,
    WriteNotApplied,
    sp_secrets_path,
)
from bot.sandbox.databricks_emulator import DatabricksEmulator
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration

HTTP_TIMEOUT = 1
LOST = {
    "503": {"status": 503, "retry_after": 0},
    "504-no-retry-after": {"status": 504, "retry_after": None},
    "timeout": {"status": 503, "retry_after": 0, "hang": HTTP_TIMEOUT + 0.6},
    "reset": {"status": None},
}
FAULTS = [pytest.param(kw, id=name) for name, kw in LOST.items()]


def gateway(databricks: DatabricksEmulator, name: str = "prod") -> WorkspaceGateway:
    fleet = emulator_fleet(databricks, retry_seconds=HTTP_TIMEOUT)
    gw = fleet.gateway(fleet.by_host(databricks.host_of(name)))
    gw.settle_seconds = 0.1
    return gw


def sp_id(databricks: DatabricksEmulator, name: str = "ml-serving") -> str:
    return str(next(p.id for p in databricks.workspace("prod").principals if p.display_name == name))


def posts(databricks: DatabricksEmulator, principal: str) -> int:
    return databricks.call_counts().get(("POST", sp_secrets_path(principal)), 0)


def test_create_list_and_delete(databricks: DatabricksEmulator) -> None:
    gw, sp = gateway(databricks), sp_id(databricks)
    created = gw.create_principal_secret(sp, timedelta(days=30), ["sql", "jobs:read"])
    assert created.value and created.value not in repr(created)
    assert created.secret.scopes == ("sql", "jobs:read")
    assert created.secret.expires is not None
    assert created.secret.expires - created.secret.created == timedelta(days=30)
    assert [s.secret_id for s in gw.list_principal_secrets(sp)] == [created.secret.secret_id]
    body = next(r.body for r in databricks.requests if r.method == "POST")
    assert body == {"lifetime": f"{30 * 86_400}s", "scopes": ["sql", "jobs:read"]}
    assert gw.delete_principal_secret(sp, created.secret.secret_id) == ""
    assert gw.list_principal_secrets(sp) == []


def test_unrestricted_sends_no_scopes_and_refusals_are_domain_errors(databricks: DatabricksEmulator) -> None:
    gw, sp = gateway(databricks), sp_id(databricks)
    gw.create_principal_secret(sp, timedelta(days=1), [])
    assert next(r.body for r in databricks.requests if r.method == "POST") == {"lifetime": "86400s"}
    with pytest.raises(DatabricksRejected):
        gw.create_principal_secret(sp, timedelta(days=731), [])
    with pytest.raises(DatabricksNotFound):
        gw.create_principal_secret("42", timedelta(days=1), [])


@pytest.mark.parametrize("fault", FAULTS)
def test_lost_answer_after_acting_reads_the_secret_back(databricks: DatabricksEmulator, fault: dict) -> None:
    gw, sp = gateway(databricks), sp_id(databricks)
    databricks.lose_answer("prod", "POST", sp_secrets_path(sp), act=True, **fault)
    with pytest.raises(SecretValueLost) as lost:
        gw.create_principal_secret(sp, timedelta(days=30), ["sql"])
    assert posts(databricks, sp) == 1, "never sent twice"
    with databricks.lock:
        made = [s.secret_id for s in databricks.workspace("prod").sp_secrets]
    assert made == [lost.value.secret.secret_id]
    assert "WAS created" in lost.value.user_message


@pytest.mark.parametrize("fault", FAULTS)
def test_lost_answer_before_acting_says_nothing_was_made(databricks: DatabricksEmulator, fault: dict) -> None:
    gw, sp = gateway(databricks), sp_id(databricks)
    with databricks.lock:
        databricks.workspace("prod").sp_secrets.clear()
    gw.create_principal_secret(sp, timedelta(days=1), [])  # an older secret is not mistaken for a new one
    databricks.lose_answer("prod", "POST", sp_secrets_path(sp), act=False, **fault)
    with pytest.raises(WriteNotApplied, match="no OAuth secret was created"):
        gw.create_principal_secret(sp, timedelta(days=30), ["sql"])
    assert posts(databricks, sp) == 2


def test_lost_delete_answer_reads_back(databricks: DatabricksEmulator) -> None:
    gw, sp = gateway(databricks), sp_id(databricks)
    made = gw.create_principal_secret(sp, timedelta(days=1), []).secret.secret_id
    path = f"{sp_secrets_path(sp)}/{made}"
    databricks.lose_answer("prod", "DELETE", path, act=True, status=503)
    assert "read back: the secret is gone" in gw.delete_principal_secret(sp, made)
    again = gw.create_principal_secret(sp, timedelta(days=1), []).secret.secret_id
    databricks.lose_answer("prod", "DELETE", f"{sp_secrets_path(sp)}/{again}", act=False, status=503)
    with pytest.raises(WriteNotApplied, match="still exists"):
        gw.delete_principal_secret(sp, again)
    assert databricks.call_counts()[("DELETE", f"{sp_secrets_path(sp)}/{again}")] == 1
