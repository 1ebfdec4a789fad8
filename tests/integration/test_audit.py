"""The fleet audit through the real SDK against the Databricks emulator."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from bot.databricks import OWNER_FILTER_MAX, WorkspaceApi, steps, workspace_client_factory
from bot.fleet import Fleet
from bot.governance.audit import UnknownWorkspace, audit, resolve_owner, stream_audit
from bot.governance.findings import Classifier
from bot.governance.models import Finding, Policy, PrincipalType, Workspace
from bot.sandbox.databricks_emulator import DEFAULT_ADMIN_TOKEN, DatabricksEmulator, seed_fleet
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration


def test_audit_reads_every_workspace_with_posture_and_findings(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    assert [ws.workspace.name for ws in report.workspaces] == ["prod", "staging", "analytics"]
    assert not report.failed
    assert len(report.tokens) == 30
    prod = report.workspaces[0]
    assert (
        prod.posture is not None
        and prod.posture.max_token_lifetime_days == 90
        and prod.posture.max_lifetime_set
    )
    staging = report.workspaces[1]
    assert staging.posture is not None and staging.posture.max_token_lifetime_days == 730
    assert not staging.posture.max_lifetime_set
    totals = report.totals_by_finding()
    assert totals[Finding.ORPHANED] >= 3, "dave is deactivated and owns three tokens"
    assert totals[Finding.NON_EXPIRING] > 0 and totals[Finding.STALE] > 0


def test_orphaned_and_principal_types(databricks: DatabricksEmulator, now: datetime) -> None:
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    dave = [t for t in report.tokens if t.token.owner == "dave@example.com"]
    assert dave and all(Finding.ORPHANED in t.findings for t in dave)
    etl = [t for t in report.tokens if t.owner_display == "etl-pipeline"]
    assert etl and all(t.principal_type is PrincipalType.SERVICE_PRINCIPAL for t in etl)


def test_owner_filter_and_owner_known(databricks: DatabricksEmulator, now: datetime) -> None:
    fleet = emulator_fleet(databricks)
    mine = audit(fleet, Policy(), now=now, owner="Alice@Example.com")
    assert mine.tokens and {t.token.owner for t in mine.tokens} == {"alice@example.com"}
    assert mine.owner_known() is True
    nobody = audit(fleet, Policy(), now=now, owner="mallory@example.com")
    assert nobody.tokens == [] and nobody.owner_known() is False


def test_on_behalf_of_tokens_belong_to_the_service_principal(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    with databricks.lock:
        prod = databricks.workspace("prod")
        etl_token = next(t for t in prod.tokens if t.comment == "nightly ETL")
        etl_token.created_by_id = prod.caller_id
        etl_token.created_by_username = prod.caller_user_name
    report = audit(emulator_fleet(databricks), Policy(), now=now, owner="patbot-admin@example.com")
    assert report.tokens == [], "the admin who created an OBO token does not own it"


def test_selectors_pick_workspaces_by_name_host_or_id(databricks: DatabricksEmulator, now: datetime) -> None:
    fleet = emulator_fleet(databricks)
    by_name = audit(fleet, Policy(), now=now, selectors=["staging"])
    assert [ws.workspace.name for ws in by_name.workspaces] == ["staging"]
    host = databricks.host_of("analytics")
    by_host = audit(fleet, Policy(), now=now, selectors=[host.split("://")[1]])
    assert [ws.workspace.name for ws in by_host.workspaces] == ["analytics"]
    ws_id = str(databricks.workspace("prod").workspace_id)
    assert [ws.workspace.name for ws in audit(fleet, Policy(), now=now, selectors=[ws_id]).workspaces] == [
        "prod"
    ]
    with pytest.raises(UnknownWorkspace, match="Known: prod, staging, analytics"):
        audit(fleet, Policy(), now=now, selectors=["nope"])


def test_a_forbidden_workspace_is_reported_while_the_rest_complete(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    databricks.fail("staging", "/api/2.0/token-management/tokens", 403)
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    failed = report.failed
    assert [ws.workspace.name for ws in failed] == ["staging"]
    assert "permission denied" in (failed[0].error or "")
    assert len(report.tokens) == 20


def test_scim_forbidden_skips_orphan_detection_with_a_warning(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    databricks.fail("prod", "/api/2.0/preview/scim/v2/Users", 403)
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    prod = report.workspaces[0]
    assert not prod.failed and prod.warnings and "orphaned tokens not checked" in prod.warnings[0]
    assert all(Finding.ORPHANED not in t.findings for t in prod.tokens)


def test_token_permissions_refused_leave_the_posture_with_a_warning(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    databricks.fail("prod", "/api/2.0/permissions/authorization/tokens", 403)
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    prod = report.workspaces[0]
    assert not prod.failed and prod.posture is not None and prod.posture.max_token_lifetime_days == 90
    assert prod.posture.token_users is None
    assert any("who may use tokens not read" in w for w in prod.warnings)
    assert report.workspaces[1].posture is not None and report.workspaces[1].posture.token_users is not None


def test_the_token_settings_refused_fail_the_workspace(databricks: DatabricksEmulator, now: datetime) -> None:
    databricks.fail("staging", "/api/2.0/workspace-conf", 403)
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    assert [ws.workspace.name for ws in report.failed] == ["staging"]
    assert "reading the token settings" in (report.failed[0].error or "")


def test_the_posture_reads_go_out_together_with_the_tokens(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    """Token settings, token permissions and tokens are asked at once: each arrives before any of them is
    answered (before, the permissions were asked only once the settings had been answered)."""
    databricks.set_latency("prod", 1.0)
    databricks.clear_requests()
    audit(emulator_fleet(databricks), Policy(), now=now, selectors=["prod"])
    first = [
        r
        for r in databricks.requests
        if r.path
        in {
            "/api/2.0/workspace-conf",
            "/api/2.0/permissions/authorization/tokens",
            "/api/2.0/token-management/tokens",
        }
    ]
    assert len(first) == 3
    assert max(r.received for r in first) < min(r.at for r in first)


def test_429_then_success(databricks: DatabricksEmulator, now: datetime) -> None:
    databricks.fail("prod", "/api/2.0/token-management/tokens", 429, times=1, retry_after=1)
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    assert not report.failed and len(report.tokens) == 30


def test_retry_budget_running_out_fails_only_that_workspace(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    databricks.fail("analytics", "/api/2.0/token-management/tokens", 503)
    report = audit(emulator_fleet(databricks, retry_seconds=2), Policy(), now=now)
    assert [ws.workspace.name for ws in report.failed] == ["analytics"]
    assert "timed out" in (report.failed[0].error or "")


def test_connection_refused_is_reported(databricks: DatabricksEmulator, now: datetime) -> None:
    fleet = emulator_fleet(databricks, retry_seconds=1)
    databricks.take_down("prod")
    report = audit(fleet, Policy(), now=now)
    assert [ws.workspace.name for ws in report.failed] == ["prod"]
    assert "cannot connect" in (report.failed[0].error or "")


def _scim_requests(emulator: DatabricksEmulator, workspace: str) -> list[dict[str, str]]:
    return [r.query for r in emulator.requests if r.workspace == workspace and "/scim/" in r.path]


def test_audit_reads_only_the_owners_of_tokens_and_probes_nothing(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    databricks.clear_requests()
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    assert not report.failed
    for name in databricks.names:
        queries = _scim_requests(databricks, name)
        assert len(queries) == 2, "one ID-filtered read of users and one of service principals"
        owners = {str(t.owner_id) for t in databricks.workspace(name).tokens}
        for query in queries:
            assert "startIndex" not in query
            assert set(query["filter"].replace('"', "").replace("id eq ", "").split(" or ")) == owners
    assert not [r for r in databricks.requests if r.path == "/.well-known/databricks-config"]


def test_an_owner_without_tokens_in_a_workspace_is_still_known_there(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    report = audit(emulator_fleet(databricks), Policy(), now=now, owner="erin@example.com")
    prod = next(ws for ws in report.workspaces if ws.workspace.name == "prod")
    assert prod.tokens == [] and prod.owner_known is True


def test_many_owners_page_every_principal_with_the_same_findings(now: datetime) -> None:
    fleet = seed_fleet(1, 3000, now=now, seed=5)
    ws = fleet[0]
    assert len({t.owner_id for t in ws.tokens}) > OWNER_FILTER_MAX
    small = seed_fleet(1, 60, now=now, seed=5)
    small[0].name = "small"
    small[0].workspace_id += 1
    with DatabricksEmulator(fleet + small) as emulator:
        fleet_of_two = emulator_fleet(emulator)
        report = audit(fleet_of_two, Policy(), now=now)
        classifier = Classifier(Policy(), now)
        for gw, got in zip(fleet_of_two.gateways(), report.workspaces, strict=True):
            every = {int(p.id): p for p in gw.principals()}
            expected = [classifier.classify(resolve_owner(t, every), every) for t in gw.list_tokens()]
            assert sorted(got.tokens, key=lambda a: a.token.token_id) == sorted(
                expected, key=lambda a: a.token.token_id
            )
            assert any(Finding.ORPHANED in a.findings for a in got.tokens)
        emulator.clear_requests()
        audit(emulator_fleet(emulator), Policy(), now=now, selectors=[ws.name])
        pages = _scim_requests(emulator, ws.name)
        n_users = sum(1 for p in ws.principals if p.kind == "user")
        n_sps = len(ws.principals) - n_users
        assert len(pages) == -(-n_users // 100) + -(-n_sps // 100), "every page once, no empty last page"
        assert all("filter" not in q for q in pages)


# ------------------------------------------------------------------------------ the audit's event loop


def test_a_big_token_list_parsed_off_the_loop_gives_the_same_report(
    databricks: DatabricksEmulator, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every token list handed to its read in a worker thread (as a list of 100,000 tokens is)."""
    on_loop = audit(emulator_fleet(databricks), Policy(), now=now, oauth=True)
    monkeypatch.setattr(steps, "BIG_ANSWER", 0)
    off_loop = audit(emulator_fleet(databricks), Policy(), now=now, oauth=True)
    assert not off_loop.failed and len(off_loop.tokens) == 30
    assert off_loop.tokens == on_loop.tokens
    assert [ws.migrations for ws in off_loop.workspaces] == [ws.migrations for ws in on_loop.workspaces]


def test_a_workspace_whose_client_cannot_be_built_fails_alone(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    build = workspace_client_factory(token=DEFAULT_ADMIN_TOKEN, retry_timeout_seconds=5)

    def factory(workspace: Workspace) -> WorkspaceApi:
        if workspace.name == "staging":
            raise ValueError("no credentials for staging")
        return build(workspace)

    fleet = Fleet(emulator_fleet(databricks).workspaces(), factory)
    report = audit(fleet, Policy(), now=now, oauth=True)
    assert [ws.workspace.name for ws in report.failed] == ["staging"]
    assert "listing tokens in staging" in (report.failed[0].error or "")
    assert len(report.tokens) == 20


def test_a_consumer_that_stops_early_ends_the_reads_still_in_flight(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    """`/pat audit` gave up: the loop cancels the slow workspace's reads instead of waiting 30 s for them."""
    databricks.set_latency("staging", 30)
    gateways = emulator_fleet(databricks, retry_seconds=60).gateways()
    reports = stream_audit(gateways, Policy(), now=now)
    assert next(reports).workspace.name == "prod"
    started = time.monotonic()
    reports.close()
    assert time.monotonic() - started < 10
    assert not [t for t in threading.enumerate() if t.name.startswith("patbot-audit")]


def _m2m_fleet(databricks: DatabricksEmulator, secret: str) -> Fleet:
    factory = workspace_client_factory(client_id="etl-app", client_secret=secret, retry_timeout_seconds=5)
    return Fleet(emulator_fleet(databricks).workspaces(), factory)


def test_an_audit_with_oauth_m2m_credentials_signs_in_once_per_workspace(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    """The SDK's client-credentials flow, for real: each workspace's client discovers its OAuth server and
    fetches one token (off the audit's loop), and every read carries it."""
    databricks.add_oauth_client("etl-app", "m2m-s3cret")
    databricks.clear_requests()
    report = audit(_m2m_fleet(databricks, "m2m-s3cret"), Policy(), now=now, oauth=True)
    assert not report.failed and len(report.tokens) == 30
    assert all(ws.migrations is not None for ws in report.workspaces)
    for name in databricks.names:
        assert databricks.count_requests("POST", "/oidc/v1/token", workspace=name) == 1
    assert not [r for r in databricks.requests if r.status == 401]


def test_an_audit_with_a_wrong_oauth_secret_fails_every_workspace_without_showing_it(
    databricks: DatabricksEmulator, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    databricks.add_oauth_client("etl-app", "m2m-s3cret")
    report = audit(_m2m_fleet(databricks, "not-the-s3cret"), Policy(), now=now)
    assert [ws.workspace.name for ws in report.failed] == ["prod", "staging", "analytics"]
    assert all("OAuth sign-in refused (invalid_client" in (ws.error or "") for ws in report.failed)
    shown = " ".join(ws.error or "" for ws in report.failed) + caplog.text
    assert "not-the-s3cret" not in shown and "m2m-s3cret" not in shown


def test_concurrent_audits_read_each_workspace_once(databricks: DatabricksEmulator, now: datetime) -> None:
    """Fifty `/pat audit`s at once (two here), each on its own event loop, share the workspace's reads."""
    fleet = emulator_fleet(databricks)
    databricks.set_latency(None, 0.3)
    databricks.clear_requests()
    reports: list[int] = []
    runs = [
        threading.Thread(
            target=lambda: reports.append(len(audit(fleet, Policy(), now=now, oauth=True).tokens))
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert reports == [30, 30]
    for name in databricks.names:
        for path in ("/api/2.0/token-management/tokens", "/api/2.0/workspace-conf"):
            assert databricks.count_requests("GET", path, workspace=name) == 1, (name, path)
