"""What every listener needs: the services, the Slack directory and the metrics of this app."""

from __future__ import annotations

from dataclasses import dataclass

from bot.governance.audit import audit
from bot.governance.models import FleetReport
from bot.operations import Operations
from bot.services import Services
from bot.slack_directory import SlackDirectory
from handlers.metrics import Metrics


@dataclass(frozen=True)
class SlackContext:
    """Services plus the Slack-side parts built with the app."""

    services: Services
    directory: SlackDirectory
    metrics: Metrics
    operations: Operations

    def audit(self, *, owner: str | None = None, selectors: tuple[str, ...] = ()) -> FleetReport:
        """A fleet audit with the configured policy and concurrency, counting workspace failures."""
        svc = self.services
        report = audit(
            svc.fleet,
            svc.policy,
            now=svc.clock(),
            owner=owner,
            selectors=selectors,
            max_workers=svc.settings.audit_concurrency,
        )
        for _ in report.failed:
            self.metrics.databricks_errors.labels("WorkspaceUnreadable").inc()
        return report
