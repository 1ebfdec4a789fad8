"""SCIM reads of users and service principals: batched ID filters, or every page at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.databricks.steps import Steps
from bot.governance.models import Principal, PrincipalType

# A SCIM filter of 50 `id eq "…"` terms has 99 nodes; Databricks refuses filters of more than 200.
OWNER_FILTER_BATCH = 50
# Past this many distinct owners, reading every principal page (concurrently) takes fewer requests than
# filtering by ID, since a page holds 100 principals and a filter batch only 50 IDs.
OWNER_FILTER_MAX = 1000
SCIM_PAGE_REQUEST = 10000
USERS_PATH = "/api/2.0/preview/scim/v2/Users"
SPS_PATH = "/api/2.0/preview/scim/v2/ServicePrincipals"
USER_ATTRIBUTES = "id,userName,displayName,active"
SP_ATTRIBUTES = "id,applicationId,displayName,active"


@dataclass(frozen=True, slots=True)
class PrincipalPage:
    """What one SCIM read found, and the reads it showed are still needed (the other pages)."""

    principals: list[Principal]
    more: list[PrincipalRead]
    complete: bool = False  # True when the reads list every principal, not only the ones asked for


PrincipalRead = Callable[[], Steps[PrincipalPage]]
"""One SCIM read, as steps (`bot.databricks.steps`)."""


def scim_string(value: str) -> str:
    """A SCIM filter string literal (JSON string escaping)."""
    return json.dumps(value)


def principals_from_page(path: str, page: dict[str, Any]) -> list[Principal]:
    """SCIM resources as principals: users named by userName, service principals by applicationId."""
    user = path == USERS_PATH
    name_key = "userName" if user else "applicationId"
    kind = PrincipalType.USER if user else PrincipalType.SERVICE_PRINCIPAL
    return [
        Principal(
            id=str(r["id"]),
            name=str(r.get(name_key) or ""),
            display_name=str(r.get("displayName") or r.get(name_key) or ""),
            type=kind,
            active=r.get("active") is not False,
        )
        for r in page.get("Resources") or []
        if isinstance(r, dict) and r.get("id")
    ]
