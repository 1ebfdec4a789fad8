"""The set of workspaces patbot governs, and one gateway per workspace."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.databricks import ClientFactory, WorkspaceGateway
from bot.errors import UnknownWorkspace
from bot.governance.models import Workspace

log = logging.getLogger(__name__)


WORKSPACE_REFRESH_SECONDS = 3600.0
RETRY_AFTER_FAILURE_SECONDS = 60.0


class Fleet:
    """Workspaces (listed, or discovered from the account) and their gateways, built lazily.

    A discovered list is asked for again once it is `refresh_seconds` old, so a workspace added to the
    account is governed within that time, and one removed stops being governed; the change is logged.
    When the account cannot be read then, the last list stays in use and discovery is retried sooner.
    """

    def __init__(
        self,
        workspaces: list[Workspace] | Callable[[], list[Workspace]],
        client_factory: ClientFactory,
        read_ttl: float = 0.0,
        *,
        refresh_seconds: float = WORKSPACE_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = workspaces
        self._factory = client_factory
        self._read_ttl = read_ttl
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._workspaces: list[Workspace] | None = workspaces if isinstance(workspaces, list) else None
        self._next_refresh = float("inf") if isinstance(workspaces, list) else 0.0
        self._gateways: dict[str, WorkspaceGateway] = {}
        self._lock = threading.Lock()

    def workspaces(self) -> list[Workspace]:
        """The governed workspaces (account discovery runs on first call and raises on failure)."""
        with self._lock:
            if self._workspaces is None or self._clock() >= self._next_refresh:
                self._discover()
            assert self._workspaces is not None
            return list(self._workspaces)

    def _discover(self) -> None:
        assert callable(self._source)
        try:
            found = self._source()
        except Exception as exc:
            if self._workspaces is None:
                raise
            log.warning(
                "could not refresh the account's workspaces (%s); still governing the %d known ones",
                getattr(exc, "user_message", type(exc).__name__),
                len(self._workspaces),
            )
            self._next_refresh = self._clock() + min(self._refresh_seconds, RETRY_AFTER_FAILURE_SECONDS)
            return
        self._next_refresh = self._clock() + self._refresh_seconds
        if self._workspaces is not None:
            _log_changes(self._workspaces, found)
            for gone in {ws.host for ws in self._workspaces} - {ws.host for ws in found}:
                self._gateways.pop(gone, None)
        else:
            log.info("governing %d workspace(s) of the account", len(found))
        self._workspaces = found

    def refresh(self) -> None:
        """Ask the account again on the next call."""
        with self._lock:
            if callable(self._source):
                self._next_refresh = 0.0

    def gateway(self, workspace: Workspace) -> WorkspaceGateway:
        """The gateway of one workspace, shared by every caller."""
        with self._lock:
            gw = self._gateways.get(workspace.host)
            if gw is None:
                gw = self._gateways[workspace.host] = WorkspaceGateway(
                    workspace, self._factory, self._read_ttl
                )
            return gw

    def gateways(self) -> list[WorkspaceGateway]:
        """A gateway for every workspace."""
        return [self.gateway(ws) for ws in self.workspaces()]

    def by_host(self, host: str) -> Workspace:
        """The governed workspace with this host; `UnknownWorkspace` when none."""
        for ws in self.workspaces():
            if ws.host == host:
                return ws
        raise UnknownWorkspace(f"{host} is not a governed workspace any more.")

    def select(self, selector: str) -> list[Workspace]:
        """Workspaces matching a host (with or without scheme), a workspace ID or a name."""
        wanted = selector.strip().rstrip("/").lower()
        bare = wanted.split("://", 1)[-1]
        return [
            ws
            for ws in self.workspaces()
            if bare in {ws.host.lower().split("://", 1)[-1], ws.name.lower(), str(ws.workspace_id or "")}
        ]


def _log_changes(before: list[Workspace], after: list[Workspace]) -> None:
    old = {ws.host: ws for ws in before}
    new = {ws.host: ws for ws in after}
    appeared = [new[h].label for h in new.keys() - old.keys()]
    gone = [old[h].label for h in old.keys() - new.keys()]
    if appeared:
        log.info("workspaces appeared in the account, now governed: %s", ", ".join(sorted(appeared)))
    if gone:
        log.info("workspaces gone from the account, no longer governed: %s", ", ".join(sorted(gone)))
