"""The seeded world of `patbot demo`: a 60-token fleet covering every finding, and the Slack people.

Builds on :func:`~bot.sandbox.databricks_emulator.demo_fleet` (three workspaces of ten tokens) and adds
ten tokens per workspace, an approver who owns tokens, a Databricks user who is not in Slack (the weekly
summary lists them), a deactivated user (orphaned tokens), a second service principal, a user with no
tokens at all, and service principals at every step of the move from PATs to OAuth secrets.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.sandbox.databricks_emulator import (
    EmulatedPrincipal,
    EmulatedSpSecret,
    EmulatedToken,
    EmulatedWorkspace,
    demo_fleet,
)
from bot.sandbox.slack_emulator import SlackEmulator

__all__ = [
    "ADMIN_CHANNEL",
    "ADMIN_CHANNEL_NAME",
    "APPROVER_GROUP",
    "PERSONAS",
    "Persona",
    "seed_slack",
    "showcase_fleet",
]

ADMIN_CHANNEL = "C01PATADMN"
ADMIN_CHANNEL_NAME = "pat-approvals"
APPROVER_GROUP = "S01PATADMN"


@dataclass(frozen=True)
class Persona:
    """A demo Slack user the simulator can switch to."""

    user_id: str
    name: str
    real_name: str
    email: str
    role: str
    approver: bool = False
    in_group: bool = False


PERSONAS: tuple[Persona, ...] = (
    Persona("U01ALICE00", "alice", "Alice Anders", "alice@example.com", "token owner"),
    Persona("U02BOB0000", "bob", "Bob Brown", "bob@example.com", "token owner, asks to revoke others'"),
    Persona("U03GRACE00", "grace", "Grace Green", "grace@example.com", "approver", approver=True),
    Persona(
        "U04HEIDI00",
        "heidi",
        "Heidi Hall",
        "heidi@example.com",
        "approver (via @pat-admins)",
        in_group=True,
    ),
    Persona("U05ZOE0000", "zoe", "Zoe Zimmer", "zoe@example.com", "no tokens"),
    Persona("U06CAROL00", "carol", "Carol Chen", "carol@example.com", "token owner"),
    Persona("U07ERIN000", "erin", "Erin Evans", "erin@example.com", "token owner"),
)


def seed_slack(slack: SlackEmulator) -> list[str]:
    """Add the personas (and deactivated dave), the approvers' group and the admin channel.

    Returns the value for ``PATBOT_APPROVERS``: the direct approvers and the group.
    """
    for p in PERSONAS:
        slack.add_user(p.name, email=p.email, real_name=p.real_name, user_id=p.user_id)
    slack.add_user(
        "dave", email="dave@example.com", real_name="Dave Dunn", deleted=True, user_id="U08DAVE000"
    )
    slack.add_usergroup(
        [p.user_id for p in PERSONAS if p.in_group], handle="pat-admins", group_id=APPROVER_GROUP
    )
    slack.add_channel(ADMIN_CHANNEL, ADMIN_CHANNEL_NAME)
    return [p.user_id for p in PERSONAS if p.approver] + [APPROVER_GROUP]


# (owner key, comment, created days ago, lifetime days or None, last used days ago or None, scopes)
_Row = tuple[str, str, int, int | None, int | None, list[str]]

_EXTRA_ROWS: dict[str, list[_Row]] = {
    "prod": [
        ("alice", "airflow dev", 3, 30, 0, ["sql"]),
        ("alice", "tableau extract", 60, None, 35, []),
        ("grace", "break-glass admin", 10, 14, 1, ["all-apis"]),
        ("frank", "spark submit", 130, 365, 100, []),
        ("frank", "RStudio", 400, 90, 320, []),
        ("airflow", "airflow prod", 95, None, 0, []),
        ("airflow", "airflow prod (new)", 2, 90, 0, ["jobs", "workspace"]),
        ("kevin", "legacy sync", 600, None, 140, []),
        ("ml-serving", "batch scoring", 40, 60, 1, []),
        ("bob", "dashboard refresh", 28, 30, 0, ["sql"]),
    ],
    "staging": [
        ("alice", "dbt staging", 50, None, None, []),
        ("alice", "pytest fixtures", 100, 90, 12, []),
        ("grace", "terraform staging", 15, 90, 0, ["all-apis"]),
        ("frank", "etl debug", 35, 60, 34, []),
        ("airflow", "airflow staging", 200, None, 3, []),
        ("kevin", "old notebook", 300, 365, 250, []),
        ("bob", "local dev", 7, 30, 1, []),
        ("erin", "looker", 92, 180, 0, ["sql"]),
        ("etl-pipeline", "staging backfill", 1, 3, None, []),
        ("ml-serving", "load test", 65, 90, 64, []),
    ],
    "analytics": [
        ("alice", "jupyter", 5, 90, 0, []),
        ("alice", "pandas export", 150, 365, 45, []),
        ("grace", "audit queries", 20, 30, 2, ["sql"]),
        ("frank", "superset", 250, None, 0, []),
        ("bob", "sql warehouse", 70, 60, 65, []),
        ("airflow", "analytics DAGs", 45, 90, 0, ["sql", "jobs", "authentication"]),
        ("kevin", "reports", 500, None, None, []),
        ("erin", "ad-hoc", 13, 14, 13, []),
        ("etl-pipeline", "cdc stream", 100, None, 0, ["sql", "unity-catalog"]),
        ("carol", "notebook sync", 29, 30, None, []),
    ],
}

COMPLETED, BACKFILLED, RUNNING = (
    "AUTOSCOPE_STATE_COMPLETED",
    "AUTOSCOPE_STATE_BACKFILLED",
    "AUTOSCOPE_STATE_RUNNING",
)

# What Databricks inferred from a token's use: (workspace, comment) -> (state, inferred, backfill). Together
# with the scopes above: overscoped through inferred scopes (a scoped one and a full-access one), through
# backfill only, a token that uses exactly what it has, one still being observed, and one that mints tokens.
_AUTOSCOPE: dict[tuple[str, str], tuple[str, list[str], list[str]]] = {
    ("prod", "airflow prod (new)"): (COMPLETED, ["jobs"], []),
    ("prod", "dbt prod"): (COMPLETED, ["sql", "unity-catalog:read"], []),
    ("staging", "airflow staging"): (BACKFILLED, [], ["jobs:read", "clusters:read"]),
    ("staging", "VS Code"): (RUNNING, ["workspace"], []),
    ("analytics", "cdc stream"): (COMPLETED, ["sql", "unity-catalog"], []),
    ("analytics", "analytics DAGs"): (COMPLETED, ["sql", "jobs"], []),
}

# Who may use tokens: (SCIM field, name, level). `staging` still lets everyone (the `users` group) use them.
_TOKEN_ACL: dict[str, list[tuple[str, str, str]]] = {
    "prod": [
        ("group_name", "admins", "CAN_MANAGE"),
        ("group_name", "data-engineers", "CAN_USE"),
        ("service_principal_name", str(uuid.uuid5(uuid.NAMESPACE_DNS, "airflow.example.com")), "CAN_USE"),
    ],
    "staging": [("group_name", "admins", "CAN_MANAGE"), ("group_name", "users", "CAN_USE")],
    "analytics": [
        ("group_name", "admins", "CAN_MANAGE"),
        ("group_name", "analysts", "CAN_USE"),
        ("user_name", "carol@example.com", "CAN_USE"),
    ],
}

_EXTRA_PEOPLE = {  # key: (display name, active); zoe is a Databricks user without tokens
    "grace": ("Grace Green", True),
    "frank": ("Frank Fischer", True),
    "kevin": ("Kevin Klein", False),
    "zoe": ("Zoe Zimmer", True),
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day_ms(moment: datetime) -> int:
    return _ms(moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0))


def showcase_fleet(now: datetime) -> list[EmulatedWorkspace]:
    """``prod``, ``staging`` and ``analytics`` with twenty tokens each, every finding represented."""
    now = now.astimezone(UTC)
    fleet = demo_fleet(now)
    extra: dict[str, EmulatedPrincipal] = {}
    for n, (key, (display, active)) in enumerate(_EXTRA_PEOPLE.items()):
        extra[key] = EmulatedPrincipal(
            id=4_421_100_000_000_001 + n * 7919,
            kind="user",
            display_name=display,
            user_name=f"{key}@example.com",
            active=active,
        )
    extra["airflow"] = EmulatedPrincipal(
        id=5_133_100_000_000_001,
        kind="service_principal",
        display_name="airflow",
        application_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, "airflow.example.com")),
    )
    for ws in fleet:
        ws.principals += [copy.copy(p) for p in extra.values()]
        by_key = {(p.user_name or p.display_name).split("@")[0]: p for p in ws.principals}
        for n, (owner_key, comment, created_days, lifetime, used_days, scopes) in enumerate(
            _EXTRA_ROWS[ws.name]
        ):
            owner = by_key[owner_key]
            created = now - timedelta(days=created_days, hours=5, minutes=11 * n)
            token_id = hashlib.sha256(f"showcase:{ws.name}:{n}".encode()).hexdigest()
            ws.tokens.append(
                EmulatedToken(
                    token_id=token_id,
                    owner_id=owner.id,
                    created_by_username=owner.login,
                    comment=comment,
                    creation_time=_ms(created),
                    expiry_time=_ms(created + timedelta(days=lifetime)) if lifetime is not None else -1,
                    last_used_day=_day_ms(now - timedelta(days=used_days)) if used_days is not None else None,
                    scopes=list(scopes),
                    workspace_id=ws.workspace_id,
                )
            )
        _add_scope_data(ws)
        _add_oauth_secrets(ws, now)
    return fleet


def _add_scope_data(ws: EmulatedWorkspace) -> None:
    ws.token_acl = list(_TOKEN_ACL[ws.name])
    for token in ws.tokens:
        seen = _AUTOSCOPE.get((ws.name, token.comment))
        if seen is not None:
            token.autoscope_state, inferred, backfill = seen
            token.inferred_scopes, token.backfill_scopes = list(inferred), list(backfill)


# ------------------------------------------------------------------------ service principals on OAuth

# (workspace, service principal) -> (secret created days ago, lifetime days): `airflow` moved to OAuth in
# prod but its PAT is still used; `reporting-app` has only an OAuth secret in analytics, about to expire.
# `etl-pipeline` is still on PATs everywhere: `/pat migrate etl-pipeline workspace=prod` is the walkthrough.
_OAUTH_SECRETS: dict[tuple[str, str], tuple[int, int]] = {
    ("prod", "airflow"): (20, 90),
    ("analytics", "reporting-app"): (85, 90),
}
_OAUTH_ONLY = EmulatedPrincipal(
    id=5_133_200_000_000_001,
    kind="service_principal",
    display_name="reporting-app",
    application_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, "reporting-app.example.com")),
)


def _add_oauth_secrets(ws: EmulatedWorkspace, now: datetime) -> None:
    if ws.name == "analytics":
        ws.principals.append(copy.copy(_OAUTH_ONLY))
    for (ws_name, sp_name), (age_days, lifetime_days) in _OAUTH_SECRETS.items():
        if ws_name != ws.name:
            continue
        sp = next(p for p in ws.principals if p.display_name == sp_name)
        created = now - timedelta(days=age_days, hours=2)
        ws.sp_secrets.append(
            EmulatedSpSecret(
                secret_id=hashlib.sha256(f"oauth:{ws.name}:{sp_name}".encode()).hexdigest(),
                principal_id=sp.id,
                create_time=_ms(created),
                expire_time=_ms(created + timedelta(days=lifetime_days)),
                scopes=["sql", "jobs"],
                secret_hash=hashlib.sha256(f"hash:{sp_name}".encode()).hexdigest()[:12],
            )
        )
