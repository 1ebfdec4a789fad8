"""The set of workspaces patbot governs, and one gateway per workspace."""

from __future__ import annotations

import threading
from collections.abc import Callable

from bot.databricks import ClientFactory, WorkspaceGateway
from bot.errors import UnknownWorkspace
from bot.governance.models import Workspace


class Fleet:
    """Workspaces (listed, or discovered once from the account) and their gateways, built lazily."""

    def __init__(
        self,
        workspaces: list[Workspace] | Callable[[], list[Workspace]],
        client_factory: ClientFactory,
        read_ttl: float = 0.0,
    ) -> None:
        self._source = workspaces
        self._factory = client_factory
        self._read_ttl = read_ttl
        self._workspaces: list[Workspace] | None = workspaces if isinstance(workspaces, list) else None
        self._gateways: dict[str, WorkspaceGateway] = {}
        self._lock = threading.Lock()

    def workspaces(self) -> list[Workspace]:
        """The governed workspaces (account discovery runs on first call and raises on failure)."""
        with self._lock:
            if self._workspaces is None:
                assert callable(self._source)
                self._workspaces = self._source()
            return list(self._workspaces)

    def refresh(self) -> None:
        """Forget discovered workspaces so the next call asks the account again."""
        with self._lock:
            if callable(self._source):
                self._workspaces = None

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
