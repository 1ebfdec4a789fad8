"""What every listener needs: the flows' dependencies, the services behind them and this app's metrics."""

from __future__ import annotations

from dataclasses import dataclass

from bot.flows.deps import FlowDeps
from bot.flows.results import AuditResult, FleetAudit, OwnAudit, Refused, RequestResult
from bot.services import Services
from handlers.blocks import Block
from handlers.errors import note_failure
from handlers.metrics import Metrics
from handlers.result_blocks import request_result_blocks


@dataclass(frozen=True)
class SlackContext:
    """The core's flows plus the Slack-side parts built with the app."""

    services: Services
    deps: FlowDeps
    metrics: Metrics

    def count(self, result: AuditResult | RequestResult) -> None:
        """Count what a result says went wrong: unreadable workspaces, Databricks errors behind a refusal."""
        if isinstance(result, OwnAudit | FleetAudit):
            for _ in result.report.failed:
                self.metrics.databricks_errors.labels("WorkspaceUnreadable").inc()
        elif isinstance(result, Refused) and result.error is not None:
            note_failure(result.error, self.metrics)

    def render(self, result: RequestResult) -> list[Block]:
        """Count, then render a request's result."""
        self.count(result)
        return request_result_blocks(result)
