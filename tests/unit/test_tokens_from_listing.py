"""`tokens_from_listing`: a token listing mapped record by record as the decoder builds it, exactly as
`token_from_dict` maps each record `json.loads` reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.databricks import token_from_dict, tokens_from_listing

HOST = "https://dbc-1.cloud.databricks.com"
A = {"token_id": "a", "creation_time": 1_700_000_000_000, "scopes": ["sql"]}
B = {"token_id": "b", "creation_time": 1_700_000_000_001, "comment": 'x, ]} {"token_id": "c"}'}
CASES: list[dict[str, Any]] = [
    {"token_infos": [A, B]},
    {"next_page_token": "p", "token_infos": [A], "other": {"token_infos": [1], "token_id": "z"}},
    {"token_infos": [{**A, "future_field": {"nested": {"token_id": "n"}}}, B]},
    {"token_infos": [A, {"comment": "no id"}, {"token_id": "no-creation-time"}, 7, B]},
    {"token_infos": []},
    {"token_infos": None},
    {"other": [1, 2, {"k": "v"}]},
    {},
]


@pytest.mark.parametrize("listing", CASES)
@pytest.mark.parametrize("indent", [None, 2])
def test_maps_each_record_as_token_from_dict_does(listing: dict[str, Any], indent: int | None) -> None:
    records = listing.get("token_infos") or []
    mapped = [token_from_dict(r, HOST) if isinstance(r, dict) else None for r in records]
    expected = [t for t in mapped if t is not None]
    tokens, skipped = tokens_from_listing(f" \n{json.dumps(listing, indent=indent)}\n ", HOST)
    assert tokens == expected
    assert skipped == len(records) - len(expected)


def test_an_empty_answer_has_no_tokens() -> None:
    assert tokens_from_listing("", HOST) == ([], 0)


@pytest.mark.parametrize(
    "bad",
    ["[1, 2]", '{"token_infos": [1, 2}', '{"token_infos" [1]}', '{"a": 1 "b": 2}', '{"token_infos": 3}'],
)
def test_malformed_json_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        tokens_from_listing(bad, HOST)
