"""`migrate`: move a service principal from PATs to an OAuth secret, through the approvers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MigrateAsk:
    """What `/pat migrate` asks for: a service principal (application ID or display name) and a workspace."""

    principal: str
    workspace: str | None = None
