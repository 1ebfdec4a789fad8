"""`scope`: change a token's API scopes in place. The owner narrowing their own token confirms it; anyone
else, and every widening, goes to the approvers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScopeAsk:
    """What the requester asked for: a token (ID or prefix) and its new scopes as typed, or `suggested`
    (the scopes Databricks saw it use)."""

    token: str
    scopes: tuple[str, ...] = ()
    suggested: bool = False
