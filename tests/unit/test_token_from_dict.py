"""`token_from_dict`: a listed token record mapped as `token_from_sdk(TokenInfo.from_dict(...))` maps it."""

from __future__ import annotations

from typing import Any

import pytest
from databricks.sdk.service.settings import TokenInfo

from bot.databricks import AUTOSCOPE_STATES, token_from_dict, token_from_sdk

HOST = "https://dbc-1.cloud.databricks.com"
FULL: dict[str, Any] = {
    "token_id": "abc123",
    "creation_time": 1_700_000_000_000,
    "expiry_time": 1_800_000_000_000,
    "last_used_day": 1_750_000_000_000,
    "created_by_username": "ana@example.com",
    "created_by_id": 11,
    "owner_id": 22,
    "comment": "ci",
    "scopes": ["sql", "jobs"],
    "autoscope_state": "AUTOSCOPE_STATE_RUNNING",
    "inferred_scopes": ["sql"],
    "backfill_scopes": ["jobs"],
    "workspace_id": 7,
}

CASES: list[dict[str, Any]] = [
    FULL,
    {"token_id": "t1", "creation_time": 1_700_000_000_000},
    {"token_id": "t2", "creation_time": "1700000000000", "owner_id": "33", "expiry_time": "0"},
    {**FULL, "owner_id": None},
    {**FULL, "autoscope_state": "SOMETHING_NEW"},
    {**FULL, "autoscope_state": ""},
    {**FULL, "autoscope_state": ["odd"]},
    {**FULL, "last_used_day": 0, "expiry_time": -1, "comment": None, "scopes": None},
    {"creation_time": 1_700_000_000_000},
    {"token_id": "t3"},
    {"token_id": "", "creation_time": 1_700_000_000_000},
    {"token_id": "t4", "creation_time": 0},
    # Days and moments at and around UTC midnight, and a millisecond past it.
    {**FULL, "last_used_day": 1_764_460_800_000, "expiry_time": 1_764_460_799_999},
    {**FULL, "last_used_day": 1_764_460_799_999, "creation_time": 1_764_460_800_001},
    {**FULL, "last_used_day": 1, "creation_time": 1},
]


@pytest.mark.parametrize("record", CASES)
def test_maps_as_the_sdk_record_does(record: dict[str, Any]) -> None:
    assert token_from_dict(record, HOST) == token_from_sdk(TokenInfo.from_dict(record), HOST)


def test_a_full_record_keeps_every_field() -> None:
    token = token_from_dict(FULL, HOST)
    assert token is not None
    assert (token.owner_id, token.autoscope_state, token.used_scopes) == (
        22,
        "AUTOSCOPE_STATE_RUNNING",
        ("sql",),
    )


def test_the_autoscope_states_are_the_sdks() -> None:
    from databricks.sdk.service.iam import AutoscopeState

    assert {s.value for s in AutoscopeState} == AUTOSCOPE_STATES
