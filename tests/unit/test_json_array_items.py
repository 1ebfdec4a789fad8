"""`json_array_items`: a listing's records decoded one at a time, exactly as `json.loads` reads them."""

from __future__ import annotations

import json

import pytest

from bot.databricks import json_array_items

CASES = [
    {"token_infos": [{"token_id": "a", "scopes": ["sql"]}, {"token_id": "b", "comment": "x, ]}"}]},
    {"next_page_token": "p", "token_infos": [{"token_id": "a"}], "other": {"token_infos": [1]}},
    {"token_infos": []},
    {"other": [1, 2, {"k": "v"}]},
    {},
]


@pytest.mark.parametrize("doc", CASES)
@pytest.mark.parametrize("indent", [None, 2])
def test_items_match_json_loads(doc: dict[str, object], indent: int | None) -> None:
    text = json.dumps(doc, indent=indent)
    assert list(json_array_items(f" \n{text}\n ", "token_infos")) == doc.get("token_infos", [])


def test_an_empty_answer_has_no_items() -> None:
    assert list(json_array_items("", "token_infos")) == []


@pytest.mark.parametrize(
    "bad", ["[1, 2]", '{"token_infos": [1, 2}', '{"token_infos" [1]}', '{"a": 1 "b": 2}']
)
def test_malformed_json_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        list(json_array_items(bad, "token_infos"))
