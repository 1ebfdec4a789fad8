"""The fleet audit: every workspace read concurrently, a failed one reported beside the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime

from bot.databricks import DatabricksError, WorkspaceGateway
from bot.governance.findings import Classifier
from bot.governance.models import FleetReport, Policy, WorkspaceReport

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, WorkspaceReport], None]


def audit_workspace(
    gateway: WorkspaceGateway, classifier: Classifier, owner: str | None = None
) -> WorkspaceReport:
    """Read one workspace's posture, principals and tokens and classify the tokens."""
    report = WorkspaceReport(workspace=gateway.workspace)
    try:
        report.posture = gateway.posture()
        tokens = gateway.list_tokens()
    except DatabricksError as exc:
        report.error = exc.user_message
        return report
    except Exception as exc:  # never let one workspace sink the fleet
        log.exception("unexpected failure auditing %s", gateway.workspace.label)
        report.error = f"unexpected error ({type(exc).__name__})"
        return report
    if owner is not None:
        wanted = owner.lower()
        tokens = [t for t in tokens if t.owner.lower() == wanted]
    principals = None
    try:
        principals = {int(p.id): p for p in gateway.principals() if p.id.isdigit()}
    except DatabricksError as exc:
        report.warnings.append(f"orphaned tokens not checked: {exc.user_message}")
    report.tokens = [classifier.classify(t, principals) for t in tokens]
    return report


def audit_fleet(
    gateways: Sequence[WorkspaceGateway],
    policy: Policy,
    *,
    now: datetime | None = None,
    owner: str | None = None,
    max_workers: int = 16,
    on_progress: ProgressCallback | None = None,
) -> FleetReport:
    """Audit every workspace with a bounded pool; the report keeps the input order."""
    moment = now or datetime.now(UTC)
    classifier = Classifier(policy, moment)
    results: list[WorkspaceReport | None] = [None] * len(gateways)
    if gateways:
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(gateways)))) as pool:
            futures = {
                pool.submit(audit_workspace, gw, classifier, owner): i for i, gw in enumerate(gateways)
            }
            for done, future in enumerate(as_completed(futures), start=1):
                result = results[futures[future]] = future.result()
                if on_progress is not None:
                    on_progress(done, len(gateways), result)
    return FleetReport(generated_at=moment, workspaces=[r for r in results if r is not None])
