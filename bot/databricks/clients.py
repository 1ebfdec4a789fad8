"""The client core of each workspace (`WorkspaceApi`), how it is built from the credentials, and the
account's workspace discovery."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from databricks.sdk.core import ApiClient, Config
from databricks.sdk.credentials_provider import CredentialsStrategy

from bot.async_read_client import AsyncReadClient
from bot.databricks.errors import translated_errors
from bot.governance.models import Workspace
from bot.read_client import Network, ReadClient

if TYPE_CHECKING:
    from databricks.sdk import AccountClient
    from databricks.sdk.service.oauth2 import (
        ServicePrincipalSecretsProxyAPI,
    )
    from databricks.sdk.service.settings import TokenManagementAPI, WorkspaceConfAPI
    from databricks.sdk.service.workspace import SecretsAPI

log = logging.getLogger(__name__)


class WorkspaceApi:
    """One workspace's SDK client core: its `Config`, one `ApiClient` (so one HTTP connection pool, reused
    by every call) and the few service APIs patbot calls, each built on first use.

    It stands where a `WorkspaceClient` would, without building the hundred-odd service objects (and
    importing their modules) that `WorkspaceClient.__init__` creates. The audit's many small reads go
    through `reads` (`bot.read_client`): the same auth, retries and errors over a leaner HTTP path.
    """

    def __init__(self, config: Config, network: Network | None = None) -> None:
        self.config = config
        self._network = network or Network()

    @cached_property
    def api_client(self) -> ApiClient:
        """The SDK's HTTP client of this workspace (the few reads outside the audit)."""
        return ApiClient(self.config)

    @cached_property
    def reads(self) -> ReadClient:
        """Blocking GETs (the Slack flows' reads): one keep-alive connection pool to the workspace."""
        return ReadClient(str(self.config.host), self.config.authenticate, **self._read_options())

    def async_reads(self) -> AsyncReadClient:
        """The fleet audit's GETs on its event loop: a new client (its connections) for each audit, which
        closes it."""
        return AsyncReadClient(str(self.config.host), self.config.authenticate, **self._read_options())

    def _read_options(self) -> dict[str, Any]:
        config = self.config
        return {
            "user_agent": config.user_agent,
            "http_timeout_seconds": float(config.http_timeout_seconds or 60),
            "retry_timeout_seconds": float(config.retry_timeout_seconds or 300),
            "network": self._network,
        }

    @cached_property
    def token_management(self) -> TokenManagementAPI:
        """`/api/2.0/token-management`."""
        from databricks.sdk.service.settings import TokenManagementAPI

        return TokenManagementAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def workspace_conf(self) -> WorkspaceConfAPI:
        """`/api/2.0/workspace-conf`."""
        from databricks.sdk.service.settings import WorkspaceConfAPI

        return WorkspaceConfAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def secrets(self) -> SecretsAPI:
        """`/api/2.0/secrets`."""
        from databricks.sdk.service.workspace import SecretsAPI

        return SecretsAPI(self.api_client)  # type: ignore[no-untyped-call]

    @cached_property
    def service_principal_secrets_proxy(self) -> ServicePrincipalSecretsProxyAPI:
        """`/api/2.0/accounts/servicePrincipals/{id}/credentials/secrets`: a principal's OAuth secrets."""
        from databricks.sdk.service.oauth2 import ServicePrincipalSecretsProxyAPI

        return ServicePrincipalSecretsProxyAPI(self.api_client)  # type: ignore[no-untyped-call]


class ClientFactory(Protocol):
    """Builds the client core of a workspace (writes only use its `config`, see `bot.write_once`)."""

    def __call__(self, workspace: Workspace) -> WorkspaceApi: ...


class _BearerToken(CredentialsStrategy):
    """PAT authentication that needs no host: the same `Authorization` header for every workspace."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_type(self) -> str:
        return "pat"

    def __call__(self, cfg: Config) -> Callable[[], dict[str, str]]:
        header = {"Authorization": f"Bearer {self._token}"}
        return lambda: dict(header)

    def __repr__(self) -> str:
        return "_BearerToken(***)"


def workspace_client_factory(
    *,
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    retry_timeout_seconds: int = 10,
    network: Network | None = None,
) -> ClientFactory:
    """Build workspace clients with the same credentials and a bounded retry budget.

    With a PAT, the configuration is resolved once (no host, so no `/.well-known/databricks-config`
    probe) and each workspace gets a deep copy naming its host (a shallow `copy()` shares the
    attributes, host included): building a client costs no request. With
    OAuth M2M or the SDK's unified auth (environment, profiles, cloud CLIs), each workspace resolves its
    own `Config`, which probes the host once (one retry budget when the host is down). `network` is the
    proxy and CA environment of the audit's reads (default: read from the environment now, once).
    """
    environment = network or Network.from_environment()
    http_timeout = min(5, retry_timeout_seconds)
    templates: dict[int, Config] = {}
    lock = threading.Lock()

    def pat_config(budget: int) -> Config:
        assert token is not None
        with lock:
            if budget not in templates:
                templates[budget] = Config(
                    credentials_strategy=_BearerToken(token),
                    retry_timeout_seconds=budget,
                    http_timeout_seconds=http_timeout,
                )
            copied: Config = templates[budget].deep_copy()  # type: ignore[no-untyped-call]
            return copied

    def build(workspace: Workspace) -> WorkspaceApi:
        budget = retry_timeout_seconds
        with translated_errors(workspace.label, "connecting"):
            if token:
                config = pat_config(budget)
                config.host = workspace.host
                return WorkspaceApi(config, environment)
            kwargs: dict[str, Any] = {
                "host": workspace.host,
                "retry_timeout_seconds": budget,
                "http_timeout_seconds": http_timeout,
            }
            if client_id and client_secret:
                kwargs["client_id"] = client_id
                kwargs["client_secret"] = client_secret
            return WorkspaceApi(Config(**kwargs), environment)

    return build


HostResolver = Callable[[str], str]


def discover_account_workspaces(
    account: AccountClient, resolve_host: HostResolver | None = None
) -> list[Workspace]:
    """Every RUNNING workspace of the account; `resolve_host(deployment_name)` gives its URL."""
    from databricks.sdk.service.provisioning import WorkspaceStatus

    resolver = resolve_host or account.config.environment.deployment_url
    label = f"account {account.config.account_id}"
    with translated_errors(label, "listing workspaces"):
        listed = list(account.workspaces.list())
    out = []
    for ws in listed:
        if ws.workspace_status is not None and ws.workspace_status != WorkspaceStatus.RUNNING:
            log.info("skipping workspace %s: %s", ws.workspace_name, ws.workspace_status.value)
            continue
        if not ws.deployment_name:
            continue
        out.append(
            Workspace(
                host=resolver(ws.deployment_name).rstrip("/"),
                workspace_id=ws.workspace_id,
                name=ws.workspace_name or ws.deployment_name,
            )
        )
    return out
