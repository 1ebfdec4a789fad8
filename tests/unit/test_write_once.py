"""Pure parts of exactly-once writes: comment markers, fresh key names, Retry-After."""

from __future__ import annotations

from datetime import date

import pytest
import requests

from bot.operations import marked_comment, marker_for
from bot.secret_keys import MAX_KEY_SUFFIX, candidates
from bot.write_once import MAX_RETRY_AFTER_SECONDS, _retry_after

D1, D2 = date(2026, 11, 30), date(2026, 12, 28)


@pytest.mark.parametrize(
    ("description", "comment", "rotated", "expected"),
    [
        ("create: the marker is appended", "nightly load", None, "nightly load [patbot:R2]"),
        ("create: an empty comment is just the marker", "", None, "[patbot:R2]"),
        ("create: a stale marker is replaced", "nightly [patbot:R1]", None, "nightly [patbot:R2]"),
        ("rotate: one rotation date", "nightly ETL", D2, "nightly ETL (rotated 2026-12-28) [patbot:R2]"),
        (
            "rotate twice: the date and the marker never pile up",
            "nightly ETL (rotated 2026-11-30) [patbot:R1]",
            D2,
            "nightly ETL (rotated 2026-12-28) [patbot:R2]",
        ),
        (
            "rotate a comment that piled up before",
            "x (rotated 2026-11-30) (rotated 2026-11-30)",
            D2,
            "x (rotated 2026-12-28) [patbot:R2]",
        ),
        ("rotate: other parentheses stay", "dbt (prod)", D1, "dbt (prod) (rotated 2026-11-30) [patbot:R2]"),
    ],
)
def test_marked_comment(description: str, comment: str, rotated: date | None, expected: str) -> None:
    assert marked_comment(comment, marker_for("R2"), rotated) == expected, description


def test_key_candidates_are_the_key_then_numbered_and_bounded() -> None:
    keys = list(candidates("etl-token"))
    assert keys[:3] == ["etl-token", "etl-token-2", "etl-token-3"]
    assert len(keys) == MAX_KEY_SUFFIX and len(set(keys)) == len(keys)


def test_key_candidates_stay_within_128_characters() -> None:
    assert all(len(k) <= 128 for k in candidates("k" * 128))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("0", 0.0), ("1", 1.0), (None, 1.0), ("soon", 1.0), ("-5", 0.0), ("3600", MAX_RETRY_AFTER_SECONDS)],
)
def test_retry_after_is_obeyed_within_bounds(header: str | None, seconds: float) -> None:
    resp = requests.Response()
    resp.status_code = 429
    if header is not None:
        resp.headers["Retry-After"] = header
    assert _retry_after(resp) == seconds
