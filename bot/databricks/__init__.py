"""The one adapter over databricks-sdk: strict domain records in, domain errors out.

- `errors`: domain errors and the mapping of SDK and transport failures to them;
- `records`: Databricks' JSON and SDK records mapped to domain records;
- `scim`: the reads of users and service principals;
- `steps`: reads written once as steps, driven blocking (`bot.read_client`) or on the fleet audit's event
  loop (`bot.async_read_client`);
- `clients`: each workspace's client core and how it is built from the credentials; account discovery;
- `gateway`: `WorkspaceGateway`, everything patbot does in one workspace.

Writes go out through `bot.write_once`.
"""

from bot.sdk_import import defer_sdk_package

defer_sdk_package()  # before the first databricks.sdk import: the client core, not every service

from bot.databricks.clients import (  # noqa: E402
    ClientFactory,
    HostResolver,
    WorkspaceApi,
    discover_account_workspaces,
    workspace_client_factory,
)
from bot.databricks.errors import (  # noqa: E402
    DatabricksError,
    DatabricksNotFound,
    DatabricksRateLimited,
    DatabricksRejected,
    SecretValueLost,
    TokenValueLost,
    WorkspaceForbidden,
    WorkspaceUnavailable,
    WriteInDoubt,
    WriteNotApplied,
    translate_error,
    translated_errors,
)
from bot.databricks.gateway import WorkspaceGateway  # noqa: E402
from bot.databricks.records import (  # noqa: E402
    AUTOSCOPE_STATES,
    TOKEN_PERMISSIONS_PATH,
    UNSET_MAX_LIFETIME_DAYS,
    CreatedSecret,
    CreatedToken,
    posture_from_conf,
    secret_from_dict,
    secret_from_sdk,
    sp_secrets_path,
    token_from_dict,
    token_from_sdk,
    token_users_from_acl,
    tokens_from_listing,
)
from bot.databricks.scim import (  # noqa: E402
    OWNER_FILTER_BATCH,
    OWNER_FILTER_MAX,
    PrincipalPage,
    PrincipalRead,
    scim_string,
)

__all__ = [
    "AUTOSCOPE_STATES",
    "OWNER_FILTER_BATCH",
    "OWNER_FILTER_MAX",
    "TOKEN_PERMISSIONS_PATH",
    "UNSET_MAX_LIFETIME_DAYS",
    "ClientFactory",
    "CreatedSecret",
    "CreatedToken",
    "DatabricksError",
    "DatabricksNotFound",
    "DatabricksRateLimited",
    "DatabricksRejected",
    "HostResolver",
    "PrincipalPage",
    "PrincipalRead",
    "SecretValueLost",
    "TokenValueLost",
    "WorkspaceApi",
    "WorkspaceForbidden",
    "WorkspaceGateway",
    "WorkspaceUnavailable",
    "WriteInDoubt",
    "WriteNotApplied",
    "discover_account_workspaces",
    "posture_from_conf",
    "scim_string",
    "secret_from_dict",
    "secret_from_sdk",
    "sp_secrets_path",
    "token_from_dict",
    "token_from_sdk",
    "token_users_from_acl",
    "tokens_from_listing",
    "translate_error",
    "translated_errors",
    "workspace_client_factory",
]
