"""The summary's PNG chart speaks the same words as the text around it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.governance.findings import Classifier
from bot.governance.labels import FINDING_LABELS
from bot.governance.models import FleetReport, Policy, Token, Workspace, WorkspaceReport
from bot.weekly.chart import findings_chart_png, findings_figure

pytest.importorskip("matplotlib")

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def report() -> FleetReport:
    classifier = Classifier(Policy(), NOW)
    ws = Workspace("https://prod.example", name="prod")
    tokens = [
        Token(f"{i:032x}", ws.host, "a@example.com", 1, "", NOW - timedelta(days=200), None, None, ())
        for i in range(3)
    ]
    tokens.append(
        Token(
            "f" * 32,
            ws.host,
            "a@example.com",
            1,
            "",
            NOW - timedelta(days=400),
            NOW + timedelta(days=300),
            NOW.date(),
            ("sql",),
        )
    )
    return FleetReport(NOW, [WorkspaceReport(ws, tokens=[classifier.classify(t) for t in tokens])])


def test_the_legend_uses_the_words_of_the_text_not_codes() -> None:
    figure = findings_figure(report())
    assert figure is not None
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert legend == ["never expires", "stale", "long-lived", "not rotated"], "worst first, plain words"
    assert all(label in FINDING_LABELS.values() for label in legend)
    assert "unscoped" not in figure.axes[0].get_xlabel()


def test_the_png_is_drawn() -> None:
    png = findings_chart_png(report())
    assert png is not None and png.startswith(b"\x89PNG")
