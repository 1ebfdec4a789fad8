"""API scopes end to end: the emulator driven by the real databricks-sdk, and patbot's adapter over it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.common.types.fieldmask import FieldMask
from databricks.sdk.config import Config
from databricks.sdk.errors import BadRequest, NotFound
from databricks.sdk.service.iam import AutoscopeState
from databricks.sdk.service.settings import TokenInfo, TokenPermissionLevel

from bot.databricks import DatabricksError, DatabricksRejected
from bot.fleet import Fleet
from bot.governance.audit import audit
from bot.governance.models import Finding, GranteeKind, Policy, TokenAccess
from bot.report import to_csv, to_json, to_table
from bot.sandbox.databricks_emulator import (
    DEFAULT_ADMIN_TOKEN,
    DatabricksEmulator,
    EmulatedPrincipal,
    EmulatedToken,
    EmulatedWorkspace,
)
from bot.sandbox.demo_data import showcase_fleet
from bot.write_once import RATE_LIMITED_ATTEMPTS
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SP = EmulatedPrincipal(7, "service_principal", "etl", application_id="6f1c0f4e-1111-2222-3333-444455556666")
ALICE = EmulatedPrincipal(8, "user", "Alice", user_name="alice@example.com")
TOKENS = "/api/2.0/token-management/tokens/"
MASK = FieldMask(["scopes"])  # type: ignore[no-untyped-call]


def _token(token_id: str, scopes: list[str], **autoscope: object) -> EmulatedToken:
    created = int((NOW - timedelta(days=3)).timestamp() * 1000)
    return EmulatedToken(
        token_id=token_id,
        owner_id=SP.id,
        created_by_username=SP.login,
        comment=token_id,
        creation_time=created,
        expiry_time=created + 30 * 86_400_000,
        scopes=scopes,
        workspace_id=42,
        **autoscope,  # type: ignore[arg-type]
    )


@pytest.fixture
def emu() -> Iterator[DatabricksEmulator]:
    ws = EmulatedWorkspace(
        name="ws",
        workspace_id=42,
        principals=[SP, ALICE],
        conf={"enableTokensConfig": "true", "maxTokenLifetimeDays": "90"},
        tokens=[
            _token(
                "inferred",
                ["sql", "jobs"],
                autoscope_state="AUTOSCOPE_STATE_COMPLETED",
                inferred_scopes=["jobs:read"],
            ),
            _token("backfill", [], autoscope_state="AUTOSCOPE_STATE_BACKFILLED", backfill_scopes=["sql"]),
            _token("plain", ["all-apis"]),
        ],
        token_acl=[
            ("group_name", "admins", "CAN_MANAGE"),
            ("group_name", "users", "CAN_USE"),
            ("user_name", "alice@example.com", "CAN_USE"),
        ],
    )
    with DatabricksEmulator([ws], clock=lambda: NOW) as emulator:
        yield emulator


def sdk(emu: DatabricksEmulator) -> WorkspaceClient:
    return WorkspaceClient(
        config=Config(host=emu.host_of("ws"), token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=5)
    )


def fleet(emu: DatabricksEmulator) -> Fleet:
    return emulator_fleet(emu, read_ttl=0)


# ------------------------------------------------------------------------------------- the real SDK


def test_list_carries_autoscope_fields_under_their_real_names(emu: DatabricksEmulator) -> None:
    listed = {t.token_id: t for t in sdk(emu).token_management.list()}
    inferred, backfill, plain = listed["inferred"], listed["backfill"], listed["plain"]
    assert inferred.autoscope_state is AutoscopeState.AUTOSCOPE_STATE_COMPLETED
    assert inferred.inferred_scopes == ["jobs:read"] and inferred.scopes == ["sql", "jobs"]
    assert backfill.backfill_scopes == ["sql"] and backfill.scopes is None
    assert plain.autoscope_state is None and plain.inferred_scopes is None


def test_patch_changes_scopes_in_place_and_answers_the_bare_token_info(emu: DatabricksEmulator) -> None:
    w = sdk(emu)
    answer = w.token_management.update_token_management(
        "inferred", TokenInfo(token_id="inferred", scopes=["jobs:read"]), MASK
    )
    assert answer.token_id == "inferred" and answer.scopes == ["jobs:read"]
    assert answer.autoscope_state is AutoscopeState.AUTOSCOPE_STATE_USER_SELECTED
    again = w.token_management.get("inferred").token_info
    assert again is not None and again.scopes == ["jobs:read"] and again.comment == "inferred"
    (patch,) = [r for r in emu.requests if r.method == "PATCH"]
    assert patch.path == TOKENS + "inferred"
    assert patch.body == {"token": {"token_id": "inferred", "scopes": ["jobs:read"]}, "update_mask": "scopes"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token": {"scopes": ["sql", "jobz"]}, "update_mask": "scopes"}, "Invalid scope: jobz"),
        ({"token": {"scopes": ["jobs:restricted-query"]}, "update_mask": "scopes"}, "Invalid scope"),
        ({"token": {"scopes": ["sql"]}, "update_mask": ""}, "update_mask is required"),
        ({"token": {"scopes": ["sql"]}}, "update_mask is required"),
        ({"token": {"scopes": ["sql"]}, "update_mask": "expiry_time"}, "cannot be updated"),
        ({"token": {}, "update_mask": "scopes"}, "must not be empty"),
        ({"token": {"token_id": "plain", "scopes": ["sql"]}, "update_mask": "scopes"}, "does not match"),
    ],
)
def test_patch_refuses_bad_bodies_with_400(
    emu: DatabricksEmulator, body: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        sdk(emu).api_client.do("PATCH", TOKENS + "inferred", body=body)
    assert emu.workspace("ws").token("inferred").scopes == ["sql", "jobs"]  # type: ignore[union-attr]


def test_patch_of_an_unknown_token_is_404(emu: DatabricksEmulator) -> None:
    with pytest.raises(NotFound):
        sdk(emu).token_management.update_token_management("nope", TokenInfo(scopes=["sql"]), MASK)


def test_create_obo_token_accepts_scopes_and_autoscope(emu: DatabricksEmulator) -> None:
    w = sdk(emu)
    created = w.token_management.create_obo_token(
        SP.application_id or "", lifetime_seconds=3600, scopes=["sql:read"], autoscope_enabled=True
    )
    assert created.token_info is not None and created.token_info.scopes == ["sql:read"]
    assert created.token_info.autoscope_state is AutoscopeState.AUTOSCOPE_STATE_RUNNING
    with pytest.raises(BadRequest, match="Invalid scope: warp-drive"):
        w.token_management.create_obo_token(
            SP.application_id or "", lifetime_seconds=3600, scopes=["warp-drive"]
        )


def test_token_permissions_endpoint(emu: DatabricksEmulator) -> None:
    perms = sdk(emu).token_management.get_permissions()
    assert perms.object_id == "authorization/tokens" and perms.object_type == "tokens"
    by_name = {(a.group_name or a.user_name): a for a in perms.access_control_list or []}
    users = by_name["users"].all_permissions or []
    assert [p.permission_level for p in users] == [TokenPermissionLevel.CAN_USE]
    assert by_name["alice@example.com"].display_name == "Alice"


# --------------------------------------------------------------------------------------- the adapter


def test_gateway_reads_scopes_autoscope_and_who_may_use_tokens(emu: DatabricksEmulator) -> None:
    gw = fleet(emu).gateways()[0]
    tokens = {t.token_id: t for t in gw.list_tokens()}
    assert tokens["inferred"].scopes == ("sql", "jobs")
    assert tokens["inferred"].autoscope_state == "AUTOSCOPE_STATE_COMPLETED"
    assert tokens["inferred"].used_scopes == ("jobs:read",)
    assert tokens["backfill"].used_scopes == ("sql",) and tokens["plain"].used_scopes == ()
    posture = gw.posture()
    assert posture.token_users is not None and posture.everyone_may_use_tokens
    assert [(u.kind, u.name, u.permission) for u in posture.token_users] == [
        (GranteeKind.GROUP, "admins", "CAN_MANAGE"),
        (GranteeKind.GROUP, "users", "CAN_USE"),
        (GranteeKind.USER, "alice@example.com", "CAN_USE"),
    ]


def test_posture_survives_unreadable_token_permissions(emu: DatabricksEmulator) -> None:
    emu.fail("ws", "/api/2.0/permissions/authorization/tokens", 400, error_code="FEATURE_DISABLED")
    report = audit(fleet(emu), Policy(), now=NOW)
    ws = report.workspaces[0]
    assert not ws.failed and ws.posture is not None and ws.posture.token_users is None
    assert any("who may use tokens" in w for w in ws.warnings)


def test_update_scopes_sends_exactly_one_patch(emu: DatabricksEmulator) -> None:
    gw = fleet(emu).gateways()[0]
    updated = gw.update_scopes("inferred", ["jobs:read"])
    assert updated is not None and updated.scopes == ("jobs:read",)
    assert emu.count_requests("PATCH", TOKENS) == 1
    assert gw.get_token("inferred").scopes == ("jobs:read",)


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [
        (503, 1),
        (502, None),
        (504, None),
        (503, 0),
    ],
)
def test_update_scopes_is_never_retried_when_the_answer_is_lost(
    emu: DatabricksEmulator, status: int, retry_after: int | None
) -> None:
    gw = fleet(emu).gateways()[0]
    emu.fail("ws", TOKENS, status, method="PATCH", retry_after=retry_after)
    with pytest.raises(DatabricksError):
        gw.update_scopes("inferred", ["jobs:read"])
    assert emu.count_requests("PATCH", TOKENS) == 1


def test_update_scopes_retries_a_429_a_bounded_number_of_times(emu: DatabricksEmulator) -> None:
    gw = fleet(emu).gateways()[0]
    emu.fail("ws", TOKENS, 429, method="PATCH", retry_after=0)
    with pytest.raises(DatabricksError):
        gw.update_scopes("inferred", ["jobs:read"])
    assert emu.count_requests("PATCH", TOKENS) == RATE_LIMITED_ATTEMPTS


def test_update_scopes_refuses_unknown_and_empty_scopes(emu: DatabricksEmulator) -> None:
    gw = fleet(emu).gateways()[0]
    with pytest.raises(DatabricksRejected, match="Invalid scope: jobz"):
        gw.update_scopes("inferred", ["jobz"])
    with pytest.raises(DatabricksRejected):
        gw.update_scopes("inferred", [])
    assert emu.count_requests("PATCH", TOKENS) == 1, "the empty list never leaves patbot"


def test_create_obo_token_passes_scopes_and_autoscope(emu: DatabricksEmulator) -> None:
    gw = fleet(emu).gateways()[0]
    created = gw.create_obo_token(
        SP.application_id or "", timedelta(days=1), "c [m1]", "[m1]", TokenAccess(("sql",), True)
    )
    assert created.token.scopes == ("sql",) and created.token.autoscope_state == "AUTOSCOPE_STATE_RUNNING"
    plain = gw.create_obo_token(SP.application_id or "", timedelta(days=1), "d [m2]", "[m2]")
    assert plain.token.scopes == () and plain.token.autoscope_state == ""
    bodies = [r.body for r in emu.requests if r.method == "POST" and "on-behalf-of" in r.path]
    assert "scopes" not in bodies[1] and "autoscope_enabled" not in bodies[1]


# ------------------------------------------------------------------------------ audit of the showcase


def test_showcase_audit_reports_scopes_use_and_token_users() -> None:
    with DatabricksEmulator(showcase_fleet(NOW), clock=lambda: NOW) as emulator:
        report = audit(emulator_fleet(emulator, read_ttl=0), Policy(), now=NOW)
    found = {f for t in report.tokens for f in t.findings}
    assert {Finding.UNSCOPED, Finding.OVERSCOPED, Finding.MINTS_TOKENS} <= found
    by_comment = {(t.token.workspace, t.token.comment): t for t in report.tokens}
    hosts = {ws.workspace.name: ws.workspace.host for ws in report.workspaces}
    assert Finding.OVERSCOPED in by_comment[(hosts["staging"], "airflow staging")].findings, "backfill only"
    assert Finding.OVERSCOPED not in by_comment[(hosts["staging"], "VS Code")].findings, "still observing"
    assert Finding.OVERSCOPED not in by_comment[(hosts["analytics"], "cdc stream")].findings, (
        "uses all it has"
    )

    doc = json.loads(to_json(report))
    rows = {(r["workspace"], r["comment"]): r for r in doc["tokens"]}
    dags = rows[("analytics", "analytics DAGs")]
    assert dags["scopes"] == ["sql", "jobs", "authentication"] and dags["used_scopes"] == ["sql", "jobs"]
    assert rows[("prod", "jdbc")]["used_scopes"] is None
    staging = next(w for w in doc["workspaces"] if w["workspace"] == "staging")
    assert staging["everyone_may_use_tokens"] is True
    assert {"kind": "group", "name": "users", "permission": "CAN_USE"} in staging["token_users"]

    table = {line.split()[0]: line for line in to_table(report).splitlines()[:4]}
    assert "TOKEN_USERS" in table["WORKSPACE"]
    assert "EVERYONE: users" in table["staging"] and "EVERYONE" not in table["prod"]
    assert "data-engineers" in table["prod"] and "admins" not in table["prod"]

    lines = list(csv.DictReader(io.StringIO(to_csv(report))))
    row = next(r for r in lines if r["comment"] == "analytics DAGs")
    assert row["scopes"] == "sql;jobs;authentication" and row["used_scopes"] == "sql;jobs"
