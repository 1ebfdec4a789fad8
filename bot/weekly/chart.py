"""The summary's chart: findings by workspace as a PNG, drawn with matplotlib when it is installed."""

from __future__ import annotations

import importlib.util
import io
from typing import TYPE_CHECKING

from bot.governance.labels import finding_label, worst_first
from bot.governance.models import Finding, FleetReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def chart_available() -> bool:
    """Whether matplotlib is installed, without importing it."""
    return importlib.util.find_spec("matplotlib") is not None


def findings_figure(report: FleetReport, limit: int = 15) -> Figure | None:
    """A bar chart of findings by workspace (worst `limit` workspaces); None without matplotlib or data.

    The legend speaks the words of the summary text ("never expires", not ``non_expiring``), worst
    first. ``unscoped`` ("full access") is left out: it is informational and would dwarf the rest.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    by_ws: dict[str, dict[Finding, int]] = {
        label: {f: n for f, n in counts.items() if f is not Finding.UNSCOPED and n}
        for label, counts in report.totals_by_workspace().items()
    }
    by_ws = {label: counts for label, counts in by_ws.items() if counts}
    if not by_ws:
        return None
    rows = sorted(by_ws.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:limit]
    labels = [label if len(label) <= 40 else label[:39] + "…" for label, _ in rows]
    present = [f for f in worst_first(Finding) if any(c.get(f) for _, c in rows)]
    # Figure + Agg canvas, not pyplot: no global state, safe in the scheduler's thread.
    figure = Figure(figsize=(8.0, 1.6 + 0.35 * len(rows)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    left = [0] * len(rows)
    for finding in present:
        values = [c.get(finding, 0) for _, c in rows]
        axes.barh(labels, values, left=left, label=finding_label(finding))
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.invert_yaxis()
    axes.set_xlabel(
        f"tokens with the finding (a token can have several; {finding_label(Finding.UNSCOPED)} not shown)"
    )
    axes.set_title(f"Findings by workspace · {report.generated_at:%Y-%m-%d}")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return figure


def findings_chart_png(report: FleetReport, limit: int = 15) -> bytes | None:
    """The chart of :func:`findings_figure` as PNG bytes; None without matplotlib or data."""
    figure = findings_figure(report, limit)
    if figure is None:
        return None
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
