"""The audit's view of service principals moving from PATs to OAuth, read through the real SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.databricks import sp_secrets_path
from bot.governance.audit import audit
from bot.governance.migration import MigrationState, fleet_migrations
from bot.governance.models import Finding, FleetReport, Policy
from bot.report import to_json
from bot.sandbox.databricks_emulator import DatabricksEmulator, EmulatedSpSecret
from bot.sandbox.demo_data import showcase_fleet
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def add_secret(
    databricks: DatabricksEmulator, ws: str, sp: str, now: datetime, age_days: int, lifetime_days: int
) -> int:
    with databricks.lock:
        state = databricks.workspace(ws)
        principal = next(p for p in state.principals if p.display_name == sp)
        created = now - timedelta(days=age_days)
        state.sp_secrets.append(
            EmulatedSpSecret(
                f"{ws}-{sp}-{age_days}",
                principal.id,
                ms(created),
                ms(created + timedelta(days=lifetime_days)),
            )
        )
        return principal.id


def test_states_and_secret_findings(databricks: DatabricksEmulator, now: datetime) -> None:
    add_secret(databricks, "prod", "ml-serving", now, 40, 90)  # its PATs were used today
    add_secret(databricks, "analytics", "ml-serving", now, 40, 365)  # long-lived
    with databricks.lock:
        feature_store = next(
            t for t in databricks.workspace("analytics").tokens if t.comment == "feature store"
        )
        feature_store.last_used_day = ms(
            (now - timedelta(days=50)).replace(hour=0, minute=0, second=0, microsecond=0)
        )
    add_secret(databricks, "staging", "etl-pipeline", now, 88, 90)  # expiring soon
    with databricks.lock:
        databricks.workspace("staging").tokens = [
            t for t in databricks.workspace("staging").tokens if t.comment != "staging ETL"
        ]

    report = audit(
        emulator_fleet(databricks), Policy(stale_days=30, max_lifetime_days=90), now=now, oauth=True
    )
    rows = fleet_migrations(report)
    assert rows is not None
    states = {(m.workspace, m.principal.display_name): m for m in rows}
    assert {k: m.state for k, m in states.items()} == {
        ("prod", "etl-pipeline"): MigrationState.PAT_ONLY,
        ("prod", "ml-serving"): MigrationState.PATS_IN_USE,
        ("staging", "etl-pipeline"): MigrationState.PAT_FREE,
        ("staging", "ml-serving"): MigrationState.PAT_ONLY,
        ("analytics", "etl-pipeline"): MigrationState.PAT_ONLY,
        ("analytics", "ml-serving"): MigrationState.PATS_UNUSED,
    }
    proposed = states[("analytics", "ml-serving")]
    assert proposed.standing.propose_revocation
    assert proposed.standing.migrated_on == (now - timedelta(days=40)).astimezone(UTC).date()
    assert [s.findings for s in proposed.secrets] == [(Finding.LONG_LIVED,)]
    assert [s.findings for s in states[("staging", "etl-pipeline")].secrets] == [(Finding.EXPIRING_SOON,)]
    assert [p.token.comment for p in states[("prod", "ml-serving")].pats] == ["model serving"]


def test_without_oauth_nothing_extra_is_read(databricks: DatabricksEmulator, now: datetime) -> None:
    report = audit(emulator_fleet(databricks), Policy(), now=now)
    assert fleet_migrations(report) is None
    assert databricks.count_requests(path_prefix="/api/2.0/accounts/servicePrincipals") == 0


def test_a_failed_secret_listing_is_a_warning_not_a_wrong_state(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    sp = add_secret(databricks, "prod", "ml-serving", now, 3, 90)
    databricks.fail("prod", sp_secrets_path(str(sp)), 403, error_code="PERMISSION_DENIED")
    report = audit(emulator_fleet(databricks), Policy(), now=now, oauth=True)
    prod = report.workspaces[0]
    assert not prod.failed and prod.migrations is None
    assert any("OAuth migration not read" in w and "permission denied" in w for w in prod.warnings)
    assert report.workspaces[1].migrations is not None


def test_json_report_carries_each_principals_state(databricks: DatabricksEmulator, now: datetime) -> None:
    add_secret(databricks, "prod", "ml-serving", now, 40, 90)
    fleet = emulator_fleet(databricks)
    doc = json.loads(to_json(audit(fleet, Policy(), now=now, oauth=True)))
    ml = next(
        r for r in doc["service_principals"] if r["workspace"] == "prod" and r["display_name"] == "ml-serving"
    )
    assert ml["state"] == "pats_in_use" and ml["oauth_secrets"][0]["id"] == "prod-ml-serving-40"
    assert ml["oauth_secrets"][0]["expires"] and ml["pats"]
    assert "service_principals" not in json.loads(to_json(audit(fleet, Policy(), now=now)))


def test_the_demo_shows_every_step_of_the_move(now: datetime) -> None:
    with DatabricksEmulator(showcase_fleet(now)) as demo:
        report = audit(emulator_fleet(demo), Policy(), now=now, oauth=True)
    states = {(m.workspace, m.principal.display_name): m for m in fleet_migrations(report) or []}
    assert states[("prod", "etl-pipeline")].state is MigrationState.PAT_ONLY
    assert states[("prod", "airflow")].state is MigrationState.PATS_IN_USE
    reporting = states[("analytics", "reporting-app")]
    assert reporting.state is MigrationState.PAT_FREE
    assert reporting.secrets[0].findings == (Finding.EXPIRING_SOON,)
    assert len(report.tokens) == 60, "the demo's token fleet is unchanged"


SPS_PATH = "/api/2.0/preview/scim/v2/ServicePrincipals"


def _tokens(report: FleetReport) -> list[tuple[str, str, str, str, tuple[Finding, ...]]]:
    return sorted(
        (t.token.workspace, t.token.token_id, t.token.owner, t.owner_display, t.findings)
        for t in report.tokens
    )


def test_service_principals_are_listed_once_and_judge_the_tokens_as_without_oauth(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    plain = audit(emulator_fleet(databricks), Policy(), now=now)
    databricks.clear_requests()
    report = audit(emulator_fleet(databricks), Policy(), now=now, oauth=True)
    # The listing read for the OAuth secrets names the owners too: no second lookup of the same principals.
    assert [r.query.get("filter") for r in databricks.requests if r.path == SPS_PATH] == [None] * 3
    assert _tokens(report) == _tokens(plain)
    assert not any(w.startswith("orphaned") for ws in report.workspaces for w in ws.warnings)


def test_a_failed_service_principal_listing_still_looks_up_the_owners(
    databricks: DatabricksEmulator, now: datetime
) -> None:
    plain = audit(emulator_fleet(databricks), Policy(), now=now)
    databricks.fail("prod", SPS_PATH, 403, times=1, error_code="PERMISSION_DENIED")
    report = audit(emulator_fleet(databricks), Policy(), now=now, oauth=True)
    prod = report.workspaces[0]
    assert prod.migrations is None
    assert any("OAuth migration not read" in w for w in prod.warnings)
    assert not any(w.startswith("orphaned") for w in prod.warnings)
    assert _tokens(report) == _tokens(plain)
