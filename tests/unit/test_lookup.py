"""Finding a token by ID or prefix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import AmbiguousToken, TokenNotFound
from bot.governance.findings import Classifier
from bot.governance.lookup import distinguishing_prefixes, find_token
from bot.governance.models import FleetReport, Policy, Token, Workspace, WorkspaceReport

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def report(*ids: str, failed: bool = False) -> FleetReport:
    ws = Workspace("https://prod", name="prod")
    c = Classifier(Policy(), NOW)
    tokens = [c.classify(Token(i, ws.host, "a@example.com", 1, "", NOW, None, None)) for i in ids]
    reports = [WorkspaceReport(ws, tokens=tokens)]
    if failed:
        reports.append(WorkspaceReport(Workspace("https://down", name="down"), error="timed out"))
    return FleetReport(NOW, reports)


def test_full_id_and_unique_prefix() -> None:
    r = report("aaaaaaaa11111111", "bbbbbbbb22222222")
    assert find_token(r, "aaaaaaaa11111111").token.token_id == "aaaaaaaa11111111"
    assert find_token(r, "BBBBBBBB").token.token_id == "bbbbbbbb22222222"


def test_exact_match_wins_over_longer_ids_with_the_same_prefix() -> None:
    r = report("aaaaaaaa1111", "aaaaaaaa11112222")
    assert find_token(r, "aaaaaaaa1111").token.token_id == "aaaaaaaa1111"


def test_prefix_shorter_than_8_is_refused() -> None:
    with pytest.raises(TokenNotFound, match="too short"):
        find_token(report("aaaaaaaa11111111"), "aaaaaaa")


def test_unknown_names_unreadable_workspaces() -> None:
    with pytest.raises(TokenNotFound, match="could not search down"):
        find_token(report("aaaaaaaa11111111", failed=True), "cccccccc")


def test_ambiguous_prefix_lists_candidates_long_enough_to_tell_apart() -> None:
    ids = ("abcdef0123456789aa", "abcdef0123456789bb", "abcdef01ffffffffff")
    with pytest.raises(AmbiguousToken) as info:
        find_token(report(*ids), "abcdef01")
    assert info.value.candidates == ["abcdef0123456789a", "abcdef0123456789b", "abcdef01ffff"]


def test_distinguishing_prefixes_are_at_least_12() -> None:
    assert distinguishing_prefixes(["0123456789abcdef", "fedcba9876543210"]) == [
        "0123456789ab",
        "fedcba987654",
    ]
