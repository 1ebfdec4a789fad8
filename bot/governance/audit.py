"""The fleet audit: every workspace read concurrently, a failed one reported beside the rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Generic, TypeVar

from bot.databricks import DatabricksError, PrincipalRead, WorkspaceGateway
from bot.databricks.steps import Steps, run_steps_async
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

if TYPE_CHECKING:
    from bot.async_read_client import AsyncReadClient

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, WorkspaceReport], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """The value of one Databricks read, or the message of its failure."""

    value: T | None = None
    error: str | None = None


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


class _WorkspaceAudit:
    """One workspace's reads as coroutines of the audit's event loop: token settings, token permissions
    and tokens at once, then the SCIM reads of the tokens' owners.

    With `oauth`, the service principals are listed too, then each active one's OAuth secrets, and the
    report carries their migration from PATs (`WorkspaceReport.migrations`).
    """

    def __init__(
        self,
        gateway: WorkspaceGateway,
        reads: Callable[[], Awaitable[AsyncReadClient]],
        limit: asyncio.Semaphore,
        classifier: Classifier,
        owner: str | None,
        oauth: bool = False,
    ) -> None:
        self.gateway = gateway
        self.label = gateway.workspace.label
        self._reads = reads
        self._limit = limit
        self._classifier = classifier
        self._owner = owner
        self._oauth = oauth

    def _run(self, steps: Steps[T]) -> Awaitable[T]:
        return run_steps_async(steps, self._reads, self._limit)

    async def _capture(self, read: Callable[[], Awaitable[T]]) -> Outcome[T]:
        """Await one read; a failure becomes a message instead of an exception."""
        try:
            return Outcome(value=await read())
        except DatabricksError as exc:
            return Outcome(error=exc.user_message)
        except Exception as exc:  # never let one workspace sink the fleet
            log.exception("unexpected failure reading %s", self.label)
            return Outcome(error=f"unexpected error reading {self.label} ({type(exc).__name__})")

    async def run(self) -> WorkspaceReport:
        gw = self.gateway
        settings = asyncio.ensure_future(self._capture(lambda: gw.token_settings_async(self._run)))
        users = asyncio.ensure_future(self._capture(lambda: gw.token_users_async(self._run)))
        sps: asyncio.Future[Outcome[list[Principal]]] | None = None
        secrets: asyncio.Future[tuple[dict[str, list[OAuthSecret]], str | None]] | None = None
        if self._oauth:
            every_page = partial(self._all_pages, gw.service_principal_reads())
            sps = asyncio.ensure_future(self._capture(lambda: gw.service_principals_async(every_page)))
            secrets = asyncio.ensure_future(self._secrets(sps))
        tokens = await self._capture(lambda: gw.list_tokens_async(self._run))
        principals = await self._principals(tokens, sps)
        posture = _posture_with_users(await settings, await users, self.label)
        report = assemble(gw.workspace, posture, tokens, principals, self._classifier, self._owner)
        if sps is not None and secrets is not None:
            found, secret_error = await secrets
            self._judge_migrations(report, await sps, found, secret_error)
        return report

    async def _principals(
        self, tokens: Outcome[list[Token]], sps: asyncio.Future[Outcome[list[Principal]]] | None
    ) -> Outcome[list[Principal]]:
        """The tokens' owners: users (and service principals) by batched ID filters; with `oauth`, every
        service principal is listed anyway, so only users are looked up, unless that listing failed."""
        if tokens.value is None:
            return Outcome(value=[])
        gw = self.gateway
        owner_ids = {t.owner_id for t in tokens.value if t.owner_id is not None}
        if sps is None:
            reads = gw.owner_reads(owner_ids, named=self._owner) if owner_ids or self._owner else []
            return await self._read_pages(reads)
        reads = gw.owner_reads(owner_ids, service_principals=False) if owner_ids else []
        users = asyncio.ensure_future(self._read_pages(reads))
        listed = await sps
        if listed.value is None:  # the owners among the service principals, by ID as without `oauth`
            listed = await self._read_pages(gw.owner_reads(owner_ids, users=False) if owner_ids else [])
        found = await users
        if found.value is None or listed.value is None:
            return Outcome(error=found.error or listed.error)
        return Outcome(value=found.value + listed.value)

    async def _read_pages(self, reads: Sequence[PrincipalRead]) -> Outcome[list[Principal]]:
        return await self._capture(partial(self._all_pages, reads))

    async def _all_pages(self, reads: Sequence[PrincipalRead]) -> list[Principal]:
        """Every principal these SCIM reads find, all at once; then at once the pages a first page names.
        Raises the first failure, once every page sent has landed."""
        found: list[Principal] = []
        pending = list(reads)
        while pending:
            pages = await asyncio.gather(*(self._run(read()) for read in pending), return_exceptions=True)
            failed = next((p for p in pages if isinstance(p, BaseException)), None)
            if failed is not None:
                raise failed
            pending = []
            for page in pages:
                assert not isinstance(page, BaseException)
                found.extend(page.principals)
                pending.extend(page.more)
        return found

    async def _secrets(
        self, sps: asyncio.Future[Outcome[list[Principal]]]
    ) -> tuple[dict[str, list[OAuthSecret]], str | None]:
        listed = await sps
        if listed.value is None:
            return {}, None
        active = [p.id for p in listed.value if p.active and p.id.isdigit()]
        # Not through the read cache: thousands of keys for one weekly or CLI audit, never shared in practice
        # (a `/pat audit` of one owner reads no secrets), and a shared flight costs a lock each.
        read = self.gateway.principal_secrets_steps
        outcomes = await asyncio.gather(*(self._capture(partial(self._run, read(pid))) for pid in active))
        found = {pid: o.value for pid, o in zip(active, outcomes, strict=True) if o.value is not None}
        failed = next((o.error for o in outcomes if o.value is None), None)
        return found, failed

    def _judge_migrations(
        self,
        report: WorkspaceReport,
        sps: Outcome[list[Principal]],
        secrets: dict[str, list[OAuthSecret]],
        secret_error: str | None,
    ) -> None:
        """Judge the service principals' migration; none, with a warning, when a read failed: half the
        secrets would misclassify principals."""
        if report.failed:
            return
        failed = sps.error if sps.value is None else secret_error
        if failed is not None or sps.value is None:
            report.warnings.append(f"OAuth migration not read: {failed}")
            return
        active = [p for p in sps.value if p.active and p.id.isdigit()]
        try:
            report.migrations = assess_migrations(
                self.label,
                active,
                report.tokens,
                secrets,
                self._classifier.policy,
                self._classifier.now,
            )
        except Exception as exc:  # the report must still land
            log.exception("unexpected failure judging the migration in %s", self.label)
            report.warnings.append(f"OAuth migration not read ({type(exc).__name__})")


def _posture_with_users(
    posture: Outcome[Posture], users: Outcome[tuple[TokenUser, ...]], label: str
) -> Outcome[Posture]:
    """The token settings with who may use tokens; without them (a warning in the report, see `assemble`)
    when the token permissions could not be read, e.g. below the Premium plan."""
    if posture.value is None:
        return posture
    if users.value is None:
        log.warning("who may use tokens in %s: %s", label, users.error)
        return posture
    return Outcome(value=replace(posture.value, token_users=users.value))


def audit_fleet(
    gateways: Sequence[WorkspaceGateway],
    policy: Policy,
    *,
    now: datetime | None = None,
    owner: str | None = None,
    max_in_flight: int = 256,
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
            max_in_flight=max_in_flight,
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
    max_in_flight: int = 256,
    on_progress: ProgressCallback | None = None,
    oauth: bool = False,
) -> Generator[WorkspaceReport, None, None]:
    """Each workspace's report, in the order given, as soon as it and those before it are read.

    Every workspace's reads run as coroutines of one event loop (`_AuditLoop`, a thread of its own), at
    most `max_in_flight` GETs at once across the fleet: a slow workspace holds a socket per request in
    flight, not a thread. `oauth` as `audit_fleet`.
    """
    if not gateways:
        return
    classifier = Classifier(policy, now)
    audit = _AuditLoop(gateways, classifier, owner, oauth and owner is None, max_in_flight)
    audit.start()
    try:
        waiting: dict[int, WorkspaceReport] = {}
        for done in range(1, len(gateways) + 1):
            while done - 1 not in waiting:
                index, report = audit.landed.get()
                waiting[index] = report
            report = waiting.pop(done - 1)
            if on_progress is not None:
                on_progress(done, len(gateways), report)
            yield report
    finally:
        audit.stop()


class _AuditLoop:
    """The audit's event loop in a thread of its own. Each workspace's report is put on `landed`, with its
    index, as soon as it is complete; `stop` cancels what is still being read (a consumer that stopped)."""

    def __init__(
        self,
        gateways: Sequence[WorkspaceGateway],
        classifier: Classifier,
        owner: str | None,
        oauth: bool,
        max_in_flight: int,
    ) -> None:
        self.landed: queue.SimpleQueue[tuple[int, WorkspaceReport]] = queue.SimpleQueue()
        self._gateways = gateways
        self._classifier = classifier
        self._owner = owner
        self._oauth = oauth
        self._max_in_flight = max(1, max_in_flight)
        self._loop = asyncio.new_event_loop()
        self._main: asyncio.Task[None] | None = None
        self._delivered: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="patbot-audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Cancel the reads still in flight, and wait for the loop to close its connections and end."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self._loop.call_soon_threadsafe(self._cancel)
        self._thread.join()

    def _cancel(self) -> None:
        if self._main is not None:
            self._main.cancel()

    def _run(self) -> None:
        loop = self._loop
        # Building a workspace's client and its first auth headers may block (a host probe, an OAuth token):
        # that runs off the loop, in these threads.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=min(32, len(self._gateways)), thread_name_prefix="patbot-audit")
        )
        self._main = loop.create_task(self._audit_all())
        try:
            loop.run_until_complete(self._main)
        except BaseException:  # cancelled by `stop`, or a bug: the consumer must still get every report
            log.debug("the audit loop ended early", exc_info=True)
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            for index in sorted(set(range(len(self._gateways))) - self._delivered):
                ws = self._gateways[index].workspace
                self.landed.put(
                    (index, WorkspaceReport(workspace=ws, error=f"reading {ws.label} was interrupted"))
                )

    async def _audit_all(self) -> None:
        limit = asyncio.Semaphore(self._max_in_flight)
        await asyncio.gather(*(self._audit(i, gw, limit) for i, gw in enumerate(self._gateways)))

    async def _audit(self, index: int, gateway: WorkspaceGateway, limit: asyncio.Semaphore) -> None:
        reads = _WorkspaceReads(gateway)
        try:
            run = _WorkspaceAudit(gateway, reads, limit, self._classifier, self._owner, self._oauth)
            report = await run.run()
        except Exception as exc:  # a report must land, or the consumer would wait for it forever
            log.exception("unexpected failure auditing %s", gateway.workspace.label)
            report = WorkspaceReport(
                workspace=gateway.workspace,
                error=f"unexpected error reading {gateway.workspace.label} ({type(exc).__name__})",
            )
        finally:
            await reads.aclose()
        self._delivered.add(index)
        self.landed.put((index, report))


class _WorkspaceReads:
    """A workspace's `AsyncReadClient` for one audit, built on first use off the loop (building the
    workspace's client may probe its host); a failure to build it fails each read that needed it."""

    def __init__(self, gateway: WorkspaceGateway) -> None:
        self._gateway = gateway
        self._building: asyncio.Future[AsyncReadClient] | None = None

    async def __call__(self) -> AsyncReadClient:
        building = self._building
        if building is None:
            building = self._building = asyncio.get_running_loop().run_in_executor(None, self._build)
        elif building.done():
            return building.result()  # every GET after the first asks: no shield (a future) each time
        return await asyncio.shield(building)

    def _build(self) -> AsyncReadClient:
        return self._gateway.client.async_reads()

    async def aclose(self) -> None:
        building = self._building
        if building is not None and building.done() and not building.cancelled() and not building.exception():
            await building.result().aclose()


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
    max_in_flight: int = 256,
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
        max_in_flight=max_in_flight,
        on_progress=on_progress,
        oauth=oauth,
    )
