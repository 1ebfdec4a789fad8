"""What every flow is handed: settings, the fleet, the store, the executor and the outside-world ports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.approvals import ApprovalStore
from bot.fleet import Fleet
from bot.governance.audit import audit
from bot.governance.models import FleetReport, Policy
from bot.operations import Operations
from bot.ports import Notifier, People
from bot.settings import Settings


@dataclass(frozen=True)
class FlowDeps:
    """The long-lived parts the flows use; built once by the composition root."""

    settings: Settings
    fleet: Fleet
    policy: Policy
    store: ApprovalStore
    executor: Operations
    people: People
    notifier: Notifier
    clock: Callable[[], datetime]

    def audit(self, *, owner: str | None = None, selectors: Sequence[str] = ()) -> FleetReport:
        """A fleet audit with the configured policy and concurrency."""
        return audit(
            self.fleet,
            self.policy,
            now=self.clock(),
            owner=owner,
            selectors=selectors,
            max_in_flight=self.settings.audit_concurrency,
        )
