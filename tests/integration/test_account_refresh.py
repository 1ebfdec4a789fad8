"""Account mode: a workspace added to the account is governed within one refresh, without a restart."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bot.governance.audit import audit
from bot.sandbox.databricks_emulator import ACCOUNT, DEFAULT_ADMIN_TOKEN, DatabricksEmulator
from bot.services import build_fleet, policy_from
from bot.settings import Settings

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def account_settings(databricks: DatabricksEmulator) -> Settings:
    return Settings(
        _env_file=None,
        databricks_account_id=databricks.account_id,  # type: ignore[call-arg]
        databricks_account_host=databricks.account_host,
        databricks_token=DEFAULT_ADMIN_TOKEN,
        databricks_timeout_seconds=2,
    )


def names(databricks: DatabricksEmulator, fleet, settings: Settings) -> list[str]:
    report = audit(fleet, policy_from(settings), now=datetime.now(UTC), max_in_flight=4)
    return [ws.workspace.name for ws in report.workspaces]


def test_a_workspace_added_after_start_is_governed_within_one_refresh(
    databricks: DatabricksEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with databricks.lock:
        databricks.workspace("analytics").status = "PROVISIONING"  # not in the account yet
    settings = account_settings(databricks)
    fleet = build_fleet(settings, host_resolver=databricks.host_for_deployment, refresh_seconds=60)
    clock = Clock()
    fleet._clock = clock  # the refresh interval, in test time
    assert names(databricks, fleet, settings) == ["prod", "staging"]

    with databricks.lock:
        databricks.workspace("analytics").status = "RUNNING"  # added to the account
    clock.now += 30
    assert names(databricks, fleet, settings) == ["prod", "staging"], "cached until the refresh is due"
    caplog.set_level(logging.INFO, logger="bot.fleet")
    clock.now += 31
    assert names(databricks, fleet, settings) == ["prod", "staging", "analytics"]
    assert "workspaces appeared in the account, now governed: analytics" in caplog.text

    with databricks.lock:
        databricks.workspace("staging").status = "CANCELLING"
    clock.now += 61
    assert names(databricks, fleet, settings) == ["prod", "analytics"]
    assert "workspaces gone from the account, no longer governed: staging" in caplog.text


def test_an_unreadable_account_keeps_the_known_workspaces(
    databricks: DatabricksEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    settings = account_settings(databricks)
    fleet = build_fleet(settings, host_resolver=databricks.host_for_deployment, refresh_seconds=60)
    clock = Clock()
    fleet._clock = clock
    assert len(fleet.workspaces()) == 3
    databricks.take_down(ACCOUNT)
    clock.now += 61
    caplog.set_level(logging.WARNING, logger="bot.fleet")
    assert len(fleet.workspaces()) == 3
    assert "could not refresh the account's workspaces" in caplog.text
    databricks.bring_up(ACCOUNT)
    clock.now += 61
    assert len(fleet.workspaces()) == 3
