"""The fleet audit: every workspace read concurrently, a failed one reported beside the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from bot.databricks import DatabricksError, WorkspaceGateway
from bot.errors import UnknownWorkspace
from bot.fleet import Fleet
from bot.governance.findings import Classifier
from bot.governance.migration import OAuthSecret, assess_migrations
from bot.governance.models import FleetReport, Policy, Posture, Principal, Token, Workspace, WorkspaceReport

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, WorkspaceReport], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """The value of one Databricks read, or the message of its failure."""

    value: T | None = None
    error: str | None = None


def capture(read: Callable[[], T], label: str) -> Outcome[T]:
    """Run one read; a failure becomes a message instead of an exception."""
    try:
        return Outcome(value=read())
    except DatabricksError as exc:
        return Outcome(error=exc.user_message)
    except Exception as exc:  # never let one workspace sink the fleet
        log.exception("unexpected failure reading %s", label)
        return Outcome(error=f"unexpected error reading {label} ({type(exc).__name__})")


def resolve_owner(token: Token, principals: Mapping[int, Principal]) -> Token:
    """The owner is the principal behind `owner_id` (an on-behalf-of token is created by an admin)."""
    principal = principals.get(token.owner_id) if token.owner_id is not None else None
    if principal is None or not principal.name or principal.name == token.owner:
        return token
    return replace(token, owner=principal.name)


def assemble(
    workspace: Workspace,
    posture: Outcome[Posture],
    tokens: Outcome[list[Token]],
    principals: Outcome[list[Principal]],
    classifier: Classifier,
    owner: str | None = None,
) -> WorkspaceReport:
    """One workspace's report from its reads: failed if posture or tokens failed."""
    report = WorkspaceReport(workspace=workspace, posture=posture.value)
    if posture.error is not None or tokens.error is not None or tokens.value is None:
        report.error = tokens.error or posture.error
        return report
    if posture.value is not None and posture.value.token_users is None:
        report.warnings.append("who may use tokens not read (token permissions unavailable)")
    listed = tokens.value
    by_id: dict[int, Principal] | None = None
    if principals.value is not None:
        by_id = {int(p.id): p for p in principals.value if p.id.isdigit()}
        listed = [resolve_owner(t, by_id) for t in listed]
    else:
        report.warnings.append(f"orphaned tokens not checked: {principals.error}")
    if owner is not None:
        wanted = owner.lower()
        listed = [t for t in listed if t.owner.lower() == wanted]
        if by_id is not None:
            report.owner_known = bool(listed) or any(p.name.lower() == wanted for p in by_id.values())
    report.tokens = [classifier.classify(t, by_id) for t in listed]
    return report


SECRET_READS_PER_WORKSPACE = 8


def read_migrations(
    gateway: WorkspaceGateway,
    report: WorkspaceReport,
    service_principals: Outcome[list[Principal]],
    policy: Policy,
    now: datetime,
) -> None:
    """List the OAuth secrets of the workspace's active service principals and judge their migration.

    Leaves `report.migrations` None, with a warning, when a listing fails: half the secrets would
    misclassify principals.
    """
    if report.failed:
        return
    label = gateway.workspace.label
    if service_principals.value is None:
        report.warnings.append(f"OAuth migration not read: {service_principals.error}")
        return
    active = [p for p in service_principals.value if p.active and p.id.isdigit()]
    workers = max(1, min(SECRET_READS_PER_WORKSPACE, len(active)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="patbot-secrets") as pool:
        reads = list(pool.map(lambda p: capture(lambda: gateway.list_principal_secrets(p.id), label), active))
    failed = next((r.error for r in reads if r.error is not None), None)
    if failed is not None:
        report.warnings.append(f"OAuth migration not read: {failed}")
        return
    secrets: dict[str, list[OAuthSecret]] = {p.id: r.value or [] for p, r in zip(active, reads, strict=True)}
    report.migrations = assess_migrations(label, active, report.tokens, secrets, policy, now)


def _principals(
    users: Future[Outcome[list[Principal]]], sps: Future[Outcome[list[Principal]]]
) -> Outcome[list[Principal]]:
    u, s = users.result(), sps.result()
    if u.value is None or s.value is None:
        return Outcome(error=u.error or s.error)
    return Outcome(value=u.value + s.value)


def audit_fleet(
    gateways: Sequence[WorkspaceGateway],
    policy: Policy,
    *,
    now: datetime | None = None,
    owner: str | None = None,
    max_workers: int = 256,
    on_progress: ProgressCallback | None = None,
    oauth: bool = False,
) -> FleetReport:
    """Audit every workspace; each workspace's four reads run as separate tasks of one bounded pool.

    With `oauth` (and no `owner` filter), the service principals' OAuth secrets are read too and each
    workspace's report carries their migration from PATs (`WorkspaceReport.migrations`).
    """
    moment = now or datetime.now(UTC)
    classifier = Classifier(policy, moment)
    reports: list[WorkspaceReport] = []
    if not gateways:
        return FleetReport(generated_at=moment, workspaces=reports)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, 4 * len(gateways)))) as pool:

        def start(gw: WorkspaceGateway) -> tuple[Future[Outcome[Any]], ...]:
            # Build the SDK client (it probes the host) before the reads, so they do not all wait
            # on the same client lock holding pool threads.
            capture(lambda: gw.client, gw.workspace.label)
            label = gw.workspace.label
            return (
                pool.submit(capture, gw.posture, label),
                pool.submit(capture, gw.list_tokens, label),
                pool.submit(capture, gw.users, label),
                pool.submit(capture, gw.service_principals, label),
            )

        started = [(gw, pool.submit(start, gw)) for gw in gateways]
        secret_reads: list[Future[None]] = []
        for done, (gw, reads) in enumerate(started, start=1):
            posture, tokens, users, sps = reads.result()
            report = assemble(
                gw.workspace,
                posture.result(),
                tokens.result(),
                _principals(users, sps),
                classifier,
                owner,
            )
            reports.append(report)
            if oauth and owner is None:
                secret_reads.append(pool.submit(read_migrations, gw, report, sps.result(), policy, moment))
            if on_progress is not None:
                on_progress(done, len(gateways), report)
        for read in secret_reads:
            read.result()
    return FleetReport(generated_at=moment, workspaces=reports)


def audit(
    fleet: Fleet,
    policy: Policy,
    *,
    now: datetime,
    owner: str | None = None,
    selectors: Sequence[str] = (),
    max_workers: int = 256,
    on_progress: ProgressCallback | None = None,
    oauth: bool = False,
) -> FleetReport:
    """Audit the fleet, or the workspaces matching `selectors` (host, ID or name); `oauth` as `audit_fleet`.

    Raises `UnknownWorkspace` for a selector that matches nothing, and `DatabricksError` when the
    account's workspaces cannot be listed.
    """
    if selectors:
        chosen: list[Workspace] = []
        for wanted in selectors:
            matches = fleet.select(wanted)
            if not matches:
                known = ", ".join(ws.label for ws in fleet.workspaces())
                raise UnknownWorkspace(f"No governed workspace matches {wanted!r}. Known: {known}.")
            chosen.extend(m for m in matches if m not in chosen)
        gateways = [fleet.gateway(ws) for ws in chosen]
    else:
        gateways = fleet.gateways()
    return audit_fleet(
        gateways, policy, now=now, owner=owner, max_workers=max_workers, on_progress=on_progress, oauth=oauth
    )
