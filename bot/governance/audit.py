"""The fleet audit: every workspace read concurrently, a failed one reported beside the rest."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Generic, TypeVar

from bot.databricks import DatabricksError, PrincipalRead, WorkspaceGateway
from bot.errors import UnknownWorkspace
from bot.fleet import Fleet
from bot.governance.findings import Classifier
from bot.governance.migration import OAuthSecret, assess_migrations
from bot.governance.models import (
    FleetReport,
    Policy,
    Posture,
    Principal,
    Token,
    TokenUser,
    Workspace,
    WorkspaceReport,
)

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


class _WorkspaceRun:
    """One workspace's reads as tasks of the shared pool: token settings, token permissions and tokens at
    once, then the SCIM reads of the tokens' owners. Every task is one request; the last one to land
    assembles the report.

    With `oauth`, the service principals are listed too, then each active one's OAuth secrets (one task
    each), and the report carries their migration from PATs (`WorkspaceReport.migrations`).
    """

    def __init__(
        self,
        gateway: WorkspaceGateway,
        submit: Callable[[Callable[[], None]], None],
        finish: Callable[[WorkspaceReport], None],
        classifier: Classifier,
        owner: str | None,
        oauth: bool = False,
    ) -> None:
        self.gateway = gateway
        self.label = gateway.workspace.label
        self._submit = submit
        self._finish = finish
        self._classifier = classifier
        self._owner = owner
        self._lock = threading.Lock()
        self._pending = 0
        self._posture: Outcome[Posture] = Outcome(error="not read")
        self._token_users: Outcome[tuple[TokenUser, ...]] = Outcome(error="not read")
        self._tokens: Outcome[list[Token]] = Outcome(error="not read")
        self._principals: list[Principal] = []
        self._principal_error: str | None = None
        self._oauth = oauth
        self._service_principals: Outcome[list[Principal]] = Outcome(error="not read")
        self._sps_landed = False
        self._owner_ids: set[int] | None = None  # the tokens' owners, once the tokens are listed
        self._secrets: dict[str, list[OAuthSecret]] = {}
        self._secret_error: str | None = None

    def start(self) -> None:
        reads = [self._read_token_settings, self._read_token_users, self._read_tokens]
        self._spawn([*reads, self._read_service_principals] if self._oauth else reads)

    def _spawn(self, tasks: Sequence[Callable[[], None]]) -> None:
        with self._lock:
            self._pending += len(tasks)
        for task in tasks:
            self._submit(task)

    def _landed(self) -> None:
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if not last:
            return
        principals: Outcome[list[Principal]] = (
            Outcome(error=self._principal_error)
            if self._principal_error is not None
            else Outcome(value=self._principals)
        )
        try:
            report = assemble(
                self.gateway.workspace,
                self._posture_with_users(),
                self._tokens,
                principals,
                self._classifier,
                self._owner,
            )
        except Exception as exc:  # a report must land, or the audit would wait for it forever
            log.exception("unexpected failure auditing %s", self.label)
            report = WorkspaceReport(
                workspace=self.gateway.workspace,
                error=f"unexpected error reading {self.label} ({type(exc).__name__})",
            )
        if self._oauth:
            self._judge_migrations(report)
        self._finish(report)

    def _read_token_settings(self) -> None:
        self._posture = capture(self.gateway.token_settings, self.label)
        self._landed()

    def _read_token_users(self) -> None:
        self._token_users = capture(self.gateway.token_users, self.label)
        self._landed()

    def _posture_with_users(self) -> Outcome[Posture]:
        """The token settings with who may use tokens; without them (a warning in the report, see
        `assemble`) when the token permissions could not be read, e.g. below the Premium plan."""
        posture, users = self._posture, self._token_users
        if posture.value is None:
            return posture
        if users.value is None:
            log.warning("who may use tokens in %s: %s", self.label, users.error)
            return posture
        return Outcome(value=replace(posture.value, token_users=users.value))

    def _read_tokens(self) -> None:
        self._tokens = tokens = capture(self.gateway.list_tokens, self.label)
        if tokens.value is not None:
            owner_ids = {t.owner_id for t in tokens.value if t.owner_id is not None}
            if self._oauth:
                # Every service principal is listed for its OAuth secrets: only users are looked up here,
                # unless that listing failed (then the owners among them are looked up as usual).
                reads = self.gateway.owner_reads(owner_ids, service_principals=False) if owner_ids else []
                with self._lock:
                    self._owner_ids = owner_ids
                    if self._service_principals.error is not None and self._sps_landed:
                        reads += self._sp_owner_reads()
            elif owner_ids or self._owner:
                reads = self.gateway.owner_reads(owner_ids, named=self._owner)
            else:
                reads = []
            self._spawn([partial(self._read_principals, read) for read in reads])
        self._landed()

    def _sp_owner_reads(self) -> list[PrincipalRead]:
        ids = self._owner_ids or set()
        return self.gateway.owner_reads(ids, users=False) if ids else []

    def _read_principals(self, read: PrincipalRead) -> None:
        page = capture(read, self.label)
        with self._lock:
            if page.value is not None:
                self._principals.extend(page.value.principals)
            elif self._principal_error is None:
                self._principal_error = page.error
        if page.value is not None and page.value.more:
            self._spawn([partial(self._read_principals, more) for more in page.value.more])
        self._landed()

    def _read_service_principals(self) -> None:
        sps = capture(self.gateway.service_principals, self.label)
        fallback: list[PrincipalRead] = []
        with self._lock:
            self._service_principals, self._sps_landed = sps, True
            if sps.value is not None:
                self._principals.extend(sps.value)  # the owners among them, for `orphaned` and owner names
            elif self._owner_ids is not None:
                fallback = self._sp_owner_reads()
        tasks = [partial(self._read_principals, read) for read in fallback]
        if sps.value is not None:
            active = [p for p in sps.value if p.active and p.id.isdigit()]
            tasks += [partial(self._read_secrets, p.id) for p in active]
        self._spawn(tasks)
        self._landed()

    def _read_secrets(self, principal_id: str) -> None:
        listed = capture(lambda: self.gateway.list_principal_secrets(principal_id), self.label)
        with self._lock:
            if listed.value is not None:
                self._secrets[principal_id] = listed.value
            elif self._secret_error is None:
                self._secret_error = listed.error
        self._landed()

    def _judge_migrations(self, report: WorkspaceReport) -> None:
        """Judge the service principals' migration; none, with a warning, when a read failed: half the
        secrets would misclassify principals."""
        if report.failed:
            return
        sps = self._service_principals
        failed = sps.error if sps.value is None else self._secret_error
        if failed is not None or sps.value is None:
            report.warnings.append(f"OAuth migration not read: {failed}")
            return
        active = [p for p in sps.value if p.active and p.id.isdigit()]
        try:
            report.migrations = assess_migrations(
                self.label,
                active,
                report.tokens,
                self._secrets,
                self._classifier.policy,
                self._classifier.now,
            )
        except Exception as exc:  # the report must still land
            log.exception("unexpected failure judging the migration in %s", self.label)
            report.warnings.append(f"OAuth migration not read ({type(exc).__name__})")


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
    """Audit every workspace; one report per workspace, in the order given.

    With `oauth` (and no `owner` filter), the service principals' OAuth secrets are read too and each
    workspace's report carries their migration from PATs (`WorkspaceReport.migrations`).
    """
    moment = now or datetime.now(UTC)
    reports = list(
        stream_audit(
            gateways,
            policy,
            now=moment,
            owner=owner,
            max_workers=max_workers,
            on_progress=on_progress,
            oauth=oauth,
        )
    )
    return FleetReport(generated_at=moment, workspaces=reports)


def stream_audit(
    gateways: Sequence[WorkspaceGateway],
    policy: Policy,
    *,
    now: datetime,
    owner: str | None = None,
    max_workers: int = 256,
    on_progress: ProgressCallback | None = None,
    oauth: bool = False,
) -> Iterator[WorkspaceReport]:
    """Each workspace's report, in the order given, as soon as it and those before it are read.

    Every read is one task of one bounded pool, so no task waits for another and a slow workspace holds
    one thread per request in flight, not the pool. `oauth` as `audit_fleet`.
    """
    classifier = Classifier(policy, now)
    if not gateways:
        return
    landed: queue.SimpleQueue[tuple[int, WorkspaceReport]] = queue.SimpleQueue()
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, 8 * len(gateways))))

    def submit(task: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the consumer stopped early: the pool is shutting down
            pool.submit(task)

    try:
        for index, gw in enumerate(gateways):
            finish = partial(_put, landed, index)
            _WorkspaceRun(gw, submit, finish, classifier, owner, oauth and owner is None).start()
        waiting: dict[int, WorkspaceReport] = {}
        for done in range(1, len(gateways) + 1):
            while done - 1 not in waiting:
                index, report = landed.get()
                waiting[index] = report
            report = waiting.pop(done - 1)
            if on_progress is not None:
                on_progress(done, len(gateways), report)
            yield report
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _put(landed: queue.SimpleQueue[tuple[int, WorkspaceReport]], index: int, report: WorkspaceReport) -> None:
    landed.put((index, report))


def select_gateways(fleet: Fleet, selectors: Sequence[str] = ()) -> list[WorkspaceGateway]:
    """The gateways of the fleet, or of the workspaces matching `selectors` (host, ID or name).

    Raises `UnknownWorkspace` for a selector that matches nothing, and `DatabricksError` when the
    account's workspaces cannot be listed.
    """
    if not selectors:
        return fleet.gateways()
    chosen: list[Workspace] = []
    for wanted in selectors:
        matches = fleet.select(wanted)
        if not matches:
            known = ", ".join(ws.label for ws in fleet.workspaces())
            raise UnknownWorkspace(f"No governed workspace matches {wanted!r}. Known: {known}.")
        chosen.extend(m for m in matches if m not in chosen)
    return [fleet.gateway(ws) for ws in chosen]


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
    """Audit the fleet, or the workspaces matching `selectors` (see `select_gateways`); `oauth` as
    `audit_fleet`."""
    return audit_fleet(
        select_gateways(fleet, selectors),
        policy,
        now=now,
        owner=owner,
        max_workers=max_workers,
        on_progress=on_progress,
        oauth=oauth,
    )
