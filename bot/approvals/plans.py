"""What each kind of request will do once approved: a typed plan, stored with the request.

Plans hold plain values only (no secrets: a token's value never exists before approval). Each kind of
request has one plan class; the store writes a plan as JSON and reads it back as the same class.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from bot.approvals.models import RequestKind


@dataclass(frozen=True, slots=True)
class RevokePlan:
    """Revoke one token; what the approvers are shown about it."""

    workspace_label: str = ""
    owner_display: str = ""
    comment: str = ""
    findings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenPlan:
    """Create a token for a service principal (create), or its replacement (rotate)."""

    workspace_label: str = ""
    application_id: str = ""
    principal: str = ""
    lifetime_seconds: int = 0
    lifetime: str = ""
    comment: str = ""
    secret_scope: str = ""
    secret_key: str = ""
    secret_key_note: str = ""
    """Why `secret_key` is not the usual key (another live token's value is there)."""
    scopes: tuple[str, ...] = ()
    """API scopes of the new token; empty means full access."""
    autoscope: bool | None = None


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """Set `maxTokenLifetimeDays` on some workspaces."""

    days: int = 0
    hosts: tuple[str, ...] = ()
    labels: str = ""


@dataclass(frozen=True, slots=True)
class PatRef:
    """One PAT of a principal being migrated, as the approvers and the outcome show it."""

    token_id: str
    comment: str
    last_used: str
    """ISO date of its last use, "" when never used."""


@dataclass(frozen=True, slots=True)
class MigratePlan:
    """An OAuth secret for a service principal, replacing its PATs (which stay until revoked)."""

    workspace_label: str = ""
    principal_id: str = ""
    """The numeric SCIM id: the `{id}` of the service-principal secrets API."""
    application_id: str = ""
    """The OAuth client ID."""
    principal: str = ""
    lifetime_seconds: int = 0
    lifetime: str = ""
    scopes: tuple[str, ...] = ()
    """The secret's API scopes: the union of its live PATs' scopes; ("all-apis",) for full access."""
    full_access_from: tuple[str, ...] = ()
    """The PATs (short IDs) with full access that make the secret full access too."""
    secret_scope: str = ""
    client_id_key: str = ""
    secret_key: str = ""
    secret_key_note: str = ""
    pat_ids: tuple[str, ...] = ()
    pat_comments: tuple[str, ...] = ()
    pat_last_used: tuple[str, ...] = ()

    @property
    def pats(self) -> tuple[PatRef, ...]:
        """The principal's live PATs when the request was made."""
        return tuple(
            PatRef(t, c, u)
            for t, c, u in zip(self.pat_ids, self.pat_comments, self.pat_last_used, strict=False)
        )


@dataclass(frozen=True, slots=True)
class ScopePlan:
    """Change one token's API scopes in place, from `before` to `after` (empty `before`: full access)."""

    workspace_label: str = ""
    owner_display: str = ""
    comment: str = ""
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    widening: bool = False
    """Whether `after` allows anything `before` did not."""


Plan = RevokePlan | TokenPlan | PolicyPlan | MigratePlan | ScopePlan

PLAN_OF_KIND: dict[RequestKind, type[Any]] = {
    RequestKind.REVOKE: RevokePlan,
    RequestKind.CREATE: TokenPlan,
    RequestKind.ROTATE: TokenPlan,
    RequestKind.POLICY: PolicyPlan,
    RequestKind.MIGRATE: MigratePlan,
    RequestKind.SCOPE: ScopePlan,
}


def empty_plan(kind: RequestKind) -> Plan:
    """The plan of a kind with every field at its default."""
    plan: Plan = PLAN_OF_KIND[kind]()
    return plan


def check_plan(kind: RequestKind, plan: Plan) -> None:
    """Refuse a plan of the wrong class for the kind (a programming error)."""
    if not isinstance(plan, PLAN_OF_KIND[kind]):
        raise TypeError(f"a {kind} request needs a {PLAN_OF_KIND[kind].__name__}, not {type(plan).__name__}")


def encode_plan(plan: Plan) -> str:
    """The plan as JSON (the hash field `plan`)."""
    return json.dumps(dataclasses.asdict(plan), sort_keys=True)


def decode_plan(kind: RequestKind, text: str) -> Plan:
    """The plan of a stored request; unknown fields (from a newer version) are ignored."""
    cls = PLAN_OF_KIND[kind]
    raw = json.loads(text or "{}")
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names}
    plan: Plan = cls(**values)
    return plan
