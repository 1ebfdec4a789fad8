"""Carrying out an approved request against Databricks, exactly once, and saying what happened."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.approvals import ApprovalRequest, ApprovalStore, RequestKind
from bot.databricks import DatabricksError, DatabricksNotFound
from bot.errors import GovernanceError
from bot.fleet import Fleet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the action did: `outcome` is a short word ("revoked", "failed"), `detail` a sentence."""

    outcome: str
    detail: str

    @property
    def ok(self) -> bool:
        """Whether the action succeeded."""
        return self.outcome != "failed"


class Operations:
    """Executes requests that were claimed with `ApprovalStore.decide(approved)`; never called twice."""

    def __init__(self, fleet: Fleet, store: ApprovalStore) -> None:
        self.fleet = fleet
        self.store = store

    def execute(self, request: ApprovalRequest) -> ApprovalRequest:
        """Act on a request this caller won, then record the outcome (first write wins)."""
        try:
            result = self._act(request)
        except GovernanceError as exc:
            result = ActionResult("failed", exc.user_message)
        except Exception as exc:  # the outcome must be recorded whatever happens
            log.exception("unexpected failure executing request %s", request.id)
            result = ActionResult("failed", f"unexpected error ({type(exc).__name__}); check the logs")
        return self.store.record_outcome(request.id, result.outcome, result.detail)

    def _act(self, request: ApprovalRequest) -> ActionResult:
        if request.kind == RequestKind.REVOKE:
            return self._revoke(request)
        return ActionResult("failed", f"{request.kind} requests are not supported by this version of patbot")

    def _revoke(self, request: ApprovalRequest) -> ActionResult:
        workspace = self.fleet.by_host(request.workspace)
        short = request.subject[:12]
        try:
            self.fleet.gateway(workspace).revoke(request.subject)
        except DatabricksNotFound:
            return ActionResult("failed", f"token {short} was already gone from {workspace.label}")
        except DatabricksError as exc:
            return ActionResult("failed", f"token {short} was NOT revoked: {exc.user_message}")
        return ActionResult("revoked", f"token {short} revoked in {workspace.label}")
