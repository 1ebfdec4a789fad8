"""The weekly job: reminder DMs to owners of stale or non-expiring tokens, and the admin summary.

Slack-free in the Bolt sense: it talks to Slack through a ``slack_sdk.WebClient`` only, and renders
messages through functions handed in by the caller (``handlers.weekly_blocks``).

Exactly once per owner and ISO week. Each owner has one Redis key,
``patbot:remind:{week}:{email}``, that moves through::

    (absent) --claim--> pending --before the HTTP call--> sending --Slack ok--> sent
                          ^                                 |
                          +------- 429 (not delivered) -----+
    pending/sending --definite failure (Slack said no, or could not connect)--> (absent)

``pending`` and ``sending`` carry the run that holds them and a lease deadline; every transition is
one Lua script on that one key, so two runs (replicas, a cron job beside ``patbot serve``) never both
hold an owner. A run that finds a live claim of another run waits for it to resolve. A run that finds
an expired ``pending`` claim (its holder died before calling Slack) takes it over; an expired
``sending`` claim (its holder died while Slack was answering) is *in doubt*: the DM may have been
delivered, so it is never sent again that week and is reported instead. At most one DM, always; zero
only for the few requests that were in flight when a process died, and those are named.

Rate limits: every DM goes through one shared pacer (evenly spaced at the expected rate of
``chat.postMessage``); a 429 pauses every worker for its ``Retry-After`` and slows the pace a little,
then the pace climbs back. Nothing is dropped: a rate-limited DM is retried until Slack accepts it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import io
import json
import logging
import threading
import time
import urllib.error
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.errors import ConfigError, GovernanceError
from bot.governance.audit import audit
from bot.governance.models import (
    FINDING_SEVERITY,
    Finding,
    FleetReport,
    PrincipalType,
    TokenAssessment,
)
from bot.report import to_csv
from bot.services import Services

log = logging.getLogger(__name__)

T = TypeVar("T")
Block = dict[str, Any]

DM_FINDINGS = frozenset({Finding.STALE, Finding.NON_EXPIRING})
"""A token with one of these earns its owner the weekly DM."""

DEFAULT_RATE_PER_MINUTE = 600.0
"""Expected ``chat.postMessage`` budget of one app. Slack documents 1 message per second *per
channel* (every DM is its own channel) and an unpublished app-wide ceiling of several hundred per
minute; 600/min is the pacer's starting point, and 429s slow it down to whatever Slack allows."""

DEFAULT_CONCURRENCY = 8
DEFAULT_LEASE_SECONDS = 120.0
MARKER_TTL_SECONDS = 8 * 24 * 3600  # a week's markers outlive the week, then vanish
DIRECTORY_TTL_SECONDS = 24 * 3600
TOTALS_TTL_SECONDS = 5 * 7 * 24 * 3600
MAX_RATE_LIMITED_ATTEMPTS = 50


class SlackUnavailable(GovernanceError):
    """Slack could not be reached, or refused a call the job cannot do without."""


class StoreUnavailable(GovernanceError):
    """Redis could not be reached."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message ready for ``chat.postMessage``: notification text and Block Kit blocks."""

    text: str
    blocks: list[Block]


@dataclass(frozen=True, slots=True)
class FlaggedToken:
    """A token with its workspace's label, as shown in messages."""

    assessment: TokenAssessment
    workspace: str


@dataclass(frozen=True, slots=True)
class OwnerReminder:
    """One owner's DM: the tokens that are stale or never expire, worst first."""

    email: str
    display: str
    tokens: tuple[FlaggedToken, ...]
    week: str
    other_flagged: int = 0  # the owner's other tokens with findings (not listed in the DM)
    user_id: str | None = None


@dataclass(slots=True)
class ReminderResult:
    """What a reminder run did (or, with ``dry_run``, would do)."""

    week: str
    dry_run: bool
    planned: list[OwnerReminder] = field(default_factory=list)  # DMs attempted / that would be sent
    sent: list[str] = field(default_factory=list)
    skipped_already_sent: list[str] = field(default_factory=list)
    not_in_slack: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # e-mail -> reason
    in_doubt: list[str] = field(default_factory=list)  # a DM may have gone out; not retried this week
    in_progress_elsewhere: list[str] = field(default_factory=list)
    service_principal_tokens: list[FlaggedToken] = field(default_factory=list)
    unreadable_workspaces: dict[str, str] = field(default_factory=dict)  # label -> error
    slack_calls: int = 0

    @property
    def eligible(self) -> int:
        """Owners who hold at least one stale or non-expiring token."""
        return len(self.planned) + len(self.skipped_already_sent) + len(self.not_in_slack)

    @property
    def complete(self) -> bool:
        """Every workspace was read and every eligible owner in Slack has (or had) the DM."""
        return not (self.failed or self.unreadable_workspaces or self.in_progress_elsewhere)


@dataclass(frozen=True, slots=True)
class WeekTotals:
    """The figures kept per ISO week to show the change since last week."""

    tokens: int
    findings: dict[str, int]

    def to_json(self) -> str:
        """Serialised for Redis."""
        return json.dumps({"tokens": self.tokens, "findings": self.findings}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> WeekTotals | None:
        """Parsed from Redis; None when unreadable."""
        try:
            doc = json.loads(raw)
            return cls(int(doc["tokens"]), {str(k): int(v) for k, v in doc["findings"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True, slots=True)
class OwnerTally:
    """One owner's flagged tokens, for the 'worst owners' list."""

    owner: str
    display: str
    principal_type: PrincipalType
    flagged: int
    severity: int
    findings: dict[Finding, int]


@dataclass(frozen=True, slots=True)
class WeeklySummary:
    """Everything the admin summary shows; rendered by a pure function."""

    week: str
    generated_at: datetime
    token_count: int
    workspace_count: int
    totals: dict[Finding, int]
    previous: WeekTotals | None
    by_workspace: dict[str, dict[Finding, int]]
    worst_owners: list[OwnerTally]
    failed_workspaces: list[tuple[str, str]]
    not_in_slack: list[str]
    service_principal_tokens: int
    reminders: ReminderResult | None = None
    attachments_note: str = ""


@dataclass(slots=True)
class SummaryResult:
    """What a summary run did (or, with ``dry_run``, would post)."""

    week: str
    dry_run: bool
    summary: WeeklySummary
    message: Rendered
    channel: str | None = None
    posted: bool = False
    already_posted: bool = False
    ts: str | None = None
    attached: list[str] = field(default_factory=list)
    chart_note: str | None = None  # why no chart was attached, if none was
    problems: list[str] = field(default_factory=list)


DmRenderer = Callable[[OwnerReminder], Rendered]
SummaryRenderer = Callable[[WeeklySummary], Rendered]


# --------------------------------------------------------------------------- planning (pure)


def iso_week(moment: datetime, timezone: str = "UTC") -> str:
    """The ISO week of `moment` in `timezone`, such as ``2025-W07``."""
    year, week, _ = moment.astimezone(ZoneInfo(timezone)).isocalendar()
    return f"{year}-W{week:02d}"


def plan_reminders(report: FleetReport, week: str) -> tuple[list[OwnerReminder], list[FlaggedToken]]:
    """One reminder per user owning a stale or non-expiring token; service principals' such tokens apart."""
    labels = {ws.workspace.host: ws.workspace.label for ws in report.workspaces}
    listed: dict[str, list[FlaggedToken]] = {}
    others: Counter[str] = Counter()
    display: dict[str, str] = {}
    principals: list[FlaggedToken] = []
    for item in report.tokens:  # worst first
        flagged = FlaggedToken(item, labels.get(item.token.workspace, item.token.workspace))
        dm_worthy = not DM_FINDINGS.isdisjoint(item.findings)
        if item.principal_type is not PrincipalType.USER:
            if dm_worthy:
                principals.append(flagged)
            continue
        email = item.token.owner.strip().lower()
        display.setdefault(email, item.owner_display or item.token.owner)
        if dm_worthy:
            listed.setdefault(email, []).append(flagged)
        elif item.findings:
            others[email] += 1
    reminders = [
        OwnerReminder(email, display[email], tuple(tokens), week, other_flagged=others[email])
        for email, tokens in sorted(listed.items())
    ]
    return reminders, principals


def owner_tallies(report: FleetReport, limit: int = 10) -> list[OwnerTally]:
    """Owners ranked by the summed severity of their flagged tokens, worst first."""
    groups: dict[str, list[TokenAssessment]] = {}
    for item in report.tokens:
        if item.findings:
            groups.setdefault(item.token.owner.lower(), []).append(item)
    tallies = []
    for items in groups.values():
        first = items[0]
        counts = Counter(f for t in items for f in t.findings)
        tallies.append(
            OwnerTally(
                owner=first.token.owner,
                display=first.owner_display or first.token.owner,
                principal_type=first.principal_type,
                flagged=len(items),
                severity=sum(t.severity for t in items),
                findings=dict(sorted(counts.items(), key=lambda kv: -FINDING_SEVERITY[kv[0]])),
            )
        )
    tallies.sort(key=lambda t: (-t.severity, -t.flagged, t.owner))
    return tallies[:limit]


def week_totals(report: FleetReport) -> WeekTotals:
    """This week's figures, as stored for next week's comparison."""
    return WeekTotals(
        tokens=len(report.tokens),
        findings={f.value: n for f, n in report.totals_by_finding().items()},
    )


def build_summary(
    report: FleetReport,
    week: str,
    *,
    previous: WeekTotals | None,
    not_in_slack: Sequence[str],
    service_principal_tokens: int,
    reminders: ReminderResult | None = None,
    attachments_note: str = "",
    worst: int = 10,
) -> WeeklySummary:
    """The admin summary's content from the week's audit."""
    return WeeklySummary(
        week=week,
        generated_at=report.generated_at,
        token_count=len(report.tokens),
        workspace_count=len(report.workspaces),
        totals=report.totals_by_finding(),
        previous=previous,
        by_workspace=report.totals_by_workspace(),
        worst_owners=owner_tallies(report, worst),
        failed_workspaces=[(ws.workspace.label, ws.error or "unknown error") for ws in report.failed],
        not_in_slack=sorted(not_in_slack),
        service_principal_tokens=service_principal_tokens,
        reminders=reminders,
        attachments_note=attachments_note,
    )


def _chart_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def findings_chart_png(report: FleetReport, limit: int = 15) -> bytes | None:
    """A PNG bar chart of findings by workspace (worst `limit` workspaces); None without matplotlib.

    ``unscoped`` is left out: it is informational and would dwarf the rest.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    by_ws: dict[str, dict[Finding, int]] = {
        label: {f: n for f, n in counts.items() if f is not Finding.UNSCOPED and n}
        for label, counts in report.totals_by_workspace().items()
    }
    by_ws = {label: counts for label, counts in by_ws.items() if counts}
    if not by_ws:
        return None
    rows = sorted(by_ws.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:limit]
    labels = [label if len(label) <= 40 else label[:39] + "…" for label, _ in rows]
    present = [
        f for f in sorted(Finding, key=lambda f: -FINDING_SEVERITY[f]) if any(c.get(f) for _, c in rows)
    ]
    # Figure + Agg canvas, not pyplot: no global state, safe in the scheduler's thread.
    figure = Figure(figsize=(8.0, 1.6 + 0.35 * len(rows)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    left = [0] * len(rows)
    for finding in present:
        values = [c.get(finding, 0) for _, c in rows]
        axes.barh(labels, values, left=left, label=finding.value)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.invert_yaxis()
    axes.set_xlabel("tokens with the finding (a token can have several; unscoped not shown)")
    axes.set_title(f"Findings by workspace · {report.generated_at:%Y-%m-%d}")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


# --------------------------------------------------------------------------- Slack plumbing


class _Tally:
    """A thread-safe counter of Slack API calls."""

    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._n += n

    @property
    def value(self) -> int:
        with self._lock:
            return self._n


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asks us to wait for a 429 (1 when unstated), or None for any other error."""
    response = exc.response
    if response.status_code != 429 and response.get("error") not in ("ratelimited", "rate_limited"):
        return None
    headers = {str(k).lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


def _error_of(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")


def call_slack(
    call: Callable[[], T],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    calls: _Tally | None = None,
    max_attempts: int = 10,
) -> T:
    """One Slack call, waiting out 429s (``Retry-After``); connection failures become `SlackUnavailable`."""
    attempt = 0
    while True:
        attempt += 1
        if calls is not None:
            calls.add()
        try:
            return call()
        except SlackApiError as exc:
            wait = retry_after(exc)
            if wait is None or attempt >= max_attempts:
                raise
            log.info("slack %s rate limited; retrying in %.1f s", what, wait)
            sleep(wait)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SlackUnavailable(f"cannot reach Slack for {what} ({reason})") from None


def _without_retry_handlers(client: WebClient) -> WebClient:
    # The campaign handles 429s itself (to pace every worker and keep leases alive) and must not
    # resend a DM after an ambiguous connection error, which the SDK's default handler would.
    clone = copy.copy(client)
    clone.retry_handlers = []
    return clone


class SlackOwners:
    """E-mail → Slack user ID: one ``users.list`` walk cached in Redis for a day, then ``lookupByEmail``.

    Deleted users and bots are left out: an owner who is one of them is "not in Slack".
    """

    CACHE_KEY = "patbot:slack:users-by-email"
    LOOKUPS_KEY = "patbot:slack:email-lookups"  # hash: e-mail -> user ID, or "-" for a miss

    def __init__(
        self,
        client: WebClient,
        store: redis.Redis[Any],
        *,
        ttl_seconds: int = DIRECTORY_TTL_SECONDS,
        page_size: int = 200,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.page_size = page_size
        self.sleep = sleep
        self.calls = _Tally()

    def members(self) -> dict[str, str]:
        """Every active person's e-mail (lower-cased) and user ID, from the cache or one walk."""
        raw = self.store.get(self.CACHE_KEY)
        if raw:
            try:
                cached = json.loads(raw)
                if isinstance(cached, dict):
                    return {str(k): str(v) for k, v in cached.items()}
            except ValueError:
                log.warning("ignoring an unreadable Slack directory cache")
        members = self._walk()
        self.store.set(self.CACHE_KEY, json.dumps(members), ex=self.ttl_seconds)
        return members

    def _walk(self) -> dict[str, str]:
        members: dict[str, str] = {}
        cursor = ""
        while True:
            try:
                page = call_slack(
                    functools.partial(self.client.users_list, limit=self.page_size, cursor=cursor or None),
                    "users.list",
                    sleep=self.sleep,
                    calls=self.calls,
                )
            except SlackApiError as exc:
                raise SlackUnavailable(
                    f"Slack answered {_error_of(exc)} to users.list; check SLACK_BOT_TOKEN and the "
                    "users:read and users:read.email scopes"
                ) from None
            for member in page.get("members") or []:
                if member.get("deleted") or member.get("is_bot") or member.get("id") == "USLACKBOT":
                    continue
                email = (member.get("profile") or {}).get("email")
                if email and member.get("id"):
                    members[str(email).strip().lower()] = str(member["id"])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return members

    def lookup(self, email: str) -> str | None:
        """The active person with this e-mail through ``users.lookupByEmail``, or None."""
        try:
            found = call_slack(
                lambda: self.client.users_lookupByEmail(email=email),
                "users.lookupByEmail",
                sleep=self.sleep,
                calls=self.calls,
            )
        except SlackApiError as exc:
            if _error_of(exc) == "users_not_found":
                return None
            raise SlackUnavailable(
                f"Slack answered {_error_of(exc)} to users.lookupByEmail; check the users:read.email scope"
            ) from None
        user = found.get("user") or {}
        if user.get("deleted") or user.get("is_bot") or not user.get("id"):
            return None
        return str(user["id"])

    def resolve(self, emails: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """(e-mail → user ID for those in Slack, sorted e-mails of those who are not)."""
        wanted = sorted({e.strip().lower() for e in emails})
        members = self.members()
        found = {e: members[e] for e in wanted if e in members}
        misses = [e for e in wanted if e not in found]
        if misses:
            remembered = self.store.hmget(self.LOOKUPS_KEY, misses)
            learned: dict[str | bytes, str] = {}
            for email, known in zip(misses, remembered, strict=True):
                if known is None:
                    user_id = self.lookup(email)
                    learned[email] = user_id or "-"
                    known = learned[email]
                if known != "-":
                    found[email] = known
            if learned:
                self.store.hset(self.LOOKUPS_KEY, mapping=learned)
                if self.store.ttl(self.LOOKUPS_KEY) < 0:
                    self.store.expire(self.LOOKUPS_KEY, self.ttl_seconds)
        return found, [e for e in wanted if e not in found]


class RatePacer:
    """Spaces calls evenly at a shared rate; a 429 pauses every caller and slows the pace (AIMD)."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        floor_per_minute: float = 6.0,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self._max = per_minute / 60.0
        self._floor = min(self._max, floor_per_minute / 60.0)
        self._rate = self._max
        self._clock = clock
        self._sleep = sleep
        self._next = clock()
        self._paused_until = float("-inf")
        self._epoch = 0
        self._lock = threading.Lock()

    @property
    def per_minute(self) -> float:
        """The current pace."""
        with self._lock:
            return self._rate * 60.0

    def wait(self) -> None:
        """Block until this caller's slot; a 429 seen meanwhile sends it to the back of the pause."""
        while True:
            with self._lock:
                now = self._clock()
                slot = max(now, self._next)
                self._next = slot + 1.0 / self._rate
                epoch = self._epoch
            if slot > now:
                self._sleep(slot - now)
            with self._lock:
                if epoch == self._epoch:
                    return

    def succeeded(self) -> None:
        """Additive increase, back towards the configured pace."""
        with self._lock:
            self._rate = min(self._max, self._rate + self._max / 50.0)

    def rate_limited(self, seconds: float) -> None:
        """Pause everyone for `seconds`; slow down once per pause (several 429s in flight count once)."""
        with self._lock:
            now = self._clock()
            if now >= self._paused_until:
                self._rate = max(self._floor, self._rate * 0.8)
            self._paused_until = max(self._paused_until, now + seconds)
            self._next = self._paused_until
            self._epoch += 1


# --------------------------------------------------------------------------- exactly-once ledger


class Claim(StrEnum):
    """The answer to "may this run send this owner's DM?"."""

    CLAIMED = "claimed"
    HELD = "held"  # another live run holds it
    SENT = "sent"
    IN_DOUBT = "in_doubt"  # a run died while Slack was answering: never resent this week


_CLAIM_LUA = """
local v = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[2])
if v then
  local state, run, deadline = string.match(v, '^(%a+)|([^|]*)|(%d+)$')
  if not state then return 'in_doubt' end
  if state == 'sent' then return 'sent' end
  if run == ARGV[1] then
    if state == 'pending' then return 'claimed' end
    return 'in_doubt'
  end
  if tonumber(deadline) > now then return 'held' end
  if state ~= 'pending' then return 'in_doubt' end
end
redis.call('SET', KEYS[1], 'pending|' .. ARGV[1] .. '|' .. string.format('%.0f', now + tonumber(ARGV[3])),
  'EX', tonumber(ARGV[4]))
return 'claimed'
"""

# ARGV: run, now_ms, from_state, to_state, lease_ms, ttl_s. Idempotent for a retried call.
_MOVE_LUA = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local state, run = string.match(v, '^(%a+)|([^|]*)|')
if run ~= ARGV[1] or (state ~= ARGV[3] and state ~= ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[4] .. '|' .. ARGV[1] .. '|' .. string.format('%.0f', tonumber(ARGV[2]) + tonumber(ARGV[5])),
  'EX', tonumber(ARGV[6]))
return 1
"""

_RELEASE_LUA = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local state, run = string.match(v, '^(%a+)|([^|]*)|')
if run ~= ARGV[1] or state == 'sent' then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


class ReminderLedger:
    """The per-owner markers of one ISO week (see the module docstring for the state machine)."""

    def __init__(
        self,
        store: redis.Redis[Any],
        week: str,
        *,
        run_id: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wall: Callable[[], float] = time.time,
        prefix: str = "patbot",
    ) -> None:
        self.store = store
        self.week = week
        self.run_id = run_id or uuid.uuid4().hex
        self.lease_ms = int(lease_seconds * 1000)
        self.wall = wall
        self.prefix = prefix
        self._claim = store.register_script(_CLAIM_LUA)
        self._move = store.register_script(_MOVE_LUA)
        self._release = store.register_script(_RELEASE_LUA)

    def key(self, email: str) -> str:
        """The owner's marker key for this week."""
        return f"{self.prefix}:remind:{self.week}:{email}"

    def _now_ms(self) -> int:
        return int(self.wall() * 1000)

    def claim(self, email: str) -> Claim:
        """Take the owner for this run if nobody sent, is sending, or may have sent their DM."""
        answer = self._claim(
            keys=[self.key(email)], args=[self.run_id, self._now_ms(), self.lease_ms, MARKER_TTL_SECONDS]
        )
        return Claim(answer)

    def peek(self, email: str) -> Claim | None:
        """Read-only: SENT, IN_DOUBT, HELD, or None when free (dry runs)."""
        value = self.store.get(self.key(email))
        if value is None:
            return None
        state, _, rest = str(value).partition("|")
        deadline = rest.rpartition("|")[2]
        if state == "sent":
            return Claim.SENT
        if deadline.isdigit() and int(deadline) > self._now_ms():
            return Claim.HELD
        return None if state == "pending" else Claim.IN_DOUBT

    def begin_send(self, email: str) -> bool:
        """pending → sending, with a fresh lease; False if this run no longer holds the owner."""
        return self._move_to(email, "pending", "sending", self.lease_ms)

    def back_off(self, email: str, seconds: float) -> bool:
        """sending → pending after a 429 (not delivered), leased past the wait."""
        return self._move_to(email, "sending", "pending", self.lease_ms + int(seconds * 1000))

    def _move_to(self, email: str, source: str, target: str, lease_ms: int) -> bool:
        moved = self._move(
            keys=[self.key(email)],
            args=[self.run_id, self._now_ms(), source, target, lease_ms, MARKER_TTL_SECONDS],
        )
        return bool(moved)

    def mark_sent(self, email: str) -> None:
        """Slack confirmed the DM: sent for the rest of the week."""
        self.store.set(self.key(email), f"sent|{self.run_id}|{self._now_ms()}", ex=MARKER_TTL_SECONDS)

    def release(self, email: str) -> None:
        """The DM certainly did not go out: free the owner for a later run."""
        self._release(keys=[self.key(email)], args=[self.run_id])


# --------------------------------------------------------------------------- reminders


class _Status(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    HELD = "held"
    IN_DOUBT = "in_doubt"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: _Status
    detail: str = ""


def _connection_refused(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    return isinstance(exc, ConnectionRefusedError) or isinstance(reason, ConnectionRefusedError)


class _Campaign:
    """One run's DMs: claim, pace, post, mark — per owner, on a bounded pool."""

    def __init__(
        self,
        client: WebClient,
        ledger: ReminderLedger,
        pacer: RatePacer,
        render_dm: DmRenderer,
        max_attempts: int = MAX_RATE_LIMITED_ATTEMPTS,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.pacer = pacer
        self.render_dm = render_dm
        self.max_attempts = max_attempts
        self.calls = _Tally()

    def deliver(self, reminder: OwnerReminder) -> _Outcome:
        email = reminder.email
        try:
            claim = self.ledger.claim(email)
        except redis.RedisError as exc:
            return _Outcome(_Status.FAILED, f"cannot reach Redis ({type(exc).__name__})")
        if claim is Claim.SENT:
            return _Outcome(_Status.ALREADY_SENT)
        if claim is Claim.HELD:
            return _Outcome(_Status.HELD)
        if claim is Claim.IN_DOUBT:
            return _Outcome(_Status.IN_DOUBT, "an earlier run stopped while Slack was answering")
        try:
            message = self.render_dm(reminder)
        except Exception:
            log.exception("cannot render the reminder for %s", email)
            self._release(email)
            return _Outcome(_Status.FAILED, "could not render the message")
        return self._post(reminder, message)

    def _post(self, reminder: OwnerReminder, message: Rendered) -> _Outcome:
        email = reminder.email
        for _attempt in range(self.max_attempts):
            self.pacer.wait()
            try:
                if not self.ledger.begin_send(email):
                    return _Outcome(_Status.HELD)  # our lease ran out and another run took over
            except redis.RedisError as exc:
                return _Outcome(_Status.FAILED, f"cannot reach Redis ({type(exc).__name__})")
            self.calls.add()
            try:
                self.client.chat_postMessage(
                    channel=reminder.user_id or "",  # a user ID posts to the app's DM with that user
                    text=message.text,
                    blocks=message.blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except SlackApiError as exc:
                wait = retry_after(exc)
                if wait is None:
                    self._release(email)
                    return _Outcome(_Status.FAILED, f"Slack answered {_error_of(exc)}")
                self.pacer.rate_limited(wait)
                # If Redis fails here the lease simply runs out; the DM was not delivered either way.
                with contextlib.suppress(redis.RedisError):
                    self.ledger.back_off(email, wait)
                continue
            except SlackRequestError as exc:  # refused by the SDK before anything was sent
                self._release(email)
                return _Outcome(_Status.FAILED, f"invalid request ({exc})")
            except Exception as exc:
                if _connection_refused(exc):
                    self._release(email)
                    return _Outcome(_Status.FAILED, "cannot connect to Slack")
                # Timeout or dropped connection after the request left: Slack may have posted it.
                log.warning("no answer from Slack for %s's reminder (%s)", email, type(exc).__name__)
                return _Outcome(_Status.IN_DOUBT, f"no answer from Slack ({type(exc).__name__})")
            self.pacer.succeeded()
            try:
                self.ledger.mark_sent(email)
            except redis.RedisError as exc:
                return _Outcome(
                    _Status.IN_DOUBT, f"sent, but the marker was not stored ({type(exc).__name__})"
                )
            return _Outcome(_Status.SENT)
        self._release(email)
        return _Outcome(_Status.FAILED, f"still rate limited after {self.max_attempts} attempts")

    def _release(self, email: str) -> None:
        try:
            self.ledger.release(email)
        except redis.RedisError:
            log.warning("cannot release the reminder claim for %s; it frees itself after its lease", email)


def _require_store(services: Services) -> redis.Redis[Any]:
    if services.redis is None:
        raise ConfigError("REDIS_URL: no Redis store is configured")
    try:
        services.redis.ping()
    except redis.RedisError as exc:
        raise StoreUnavailable(f"cannot reach Redis at REDIS_URL ({type(exc).__name__})") from None
    return services.redis


def audit_now(services: Services, moment: datetime) -> FleetReport:
    """The fleet audit the weekly job works from."""
    return audit(
        services.fleet,
        services.policy,
        now=moment,
        max_workers=services.settings.audit_concurrency,
    )


def remind(
    services: Services,
    client: WebClient,
    *,
    render_dm: DmRenderer,
    dry_run: bool = False,
    now: datetime | None = None,
    report: FleetReport | None = None,
    owners: SlackOwners | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    poll_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    run_id: str | None = None,
) -> ReminderResult:
    """Send this ISO week's reminder DMs: one per owner holding a stale or non-expiring token.

    Idempotent per week and owner across restarts and concurrent runs. `sleep` and `clock` pace the
    campaign and wait out 429s (a benchmark injects emulated time); `wall` times the claims' leases.
    With `dry_run`, Slack is only read (to match owners) and no marker is written.
    """
    store = _require_store(services)
    moment = now or services.clock()
    week = iso_week(moment, services.settings.timezone)
    report = report if report is not None else audit_now(services, moment)
    reminders, principal_tokens = plan_reminders(report, week)
    directory = owners or SlackOwners(client, store, sleep=sleep)
    calls_before = directory.calls.value
    found, missing = directory.resolve(r.email for r in reminders)
    result = ReminderResult(
        week=week,
        dry_run=dry_run,
        not_in_slack=missing,
        service_principal_tokens=principal_tokens,
        unreadable_workspaces={ws.workspace.label: ws.error or "unknown error" for ws in report.failed},
    )
    targets = [replace(r, user_id=found[r.email]) for r in reminders if r.email in found]
    ledger = ReminderLedger(store, week, run_id=run_id, lease_seconds=lease_seconds, wall=wall)
    if dry_run:
        for reminder in targets:
            state = ledger.peek(reminder.email)
            if state is Claim.SENT:
                result.skipped_already_sent.append(reminder.email)
            elif state is Claim.IN_DOUBT:
                result.in_doubt.append(reminder.email)
            else:
                result.planned.append(reminder)
        result.slack_calls = directory.calls.value - calls_before
        return result

    campaign = _Campaign(
        _without_retry_handlers(client),
        ledger,
        RatePacer(rate_per_minute, clock=clock, sleep=sleep),
        render_dm,
    )
    outcomes = _run_campaign(campaign, targets, concurrency, lease_seconds, poll_seconds, sleep, wall)
    for reminder in targets:
        outcome = outcomes[reminder.email]
        if outcome.status is _Status.ALREADY_SENT:
            result.skipped_already_sent.append(reminder.email)
            continue
        result.planned.append(reminder)
        if outcome.status is _Status.SENT:
            result.sent.append(reminder.email)
        elif outcome.status is _Status.IN_DOUBT:
            result.in_doubt.append(reminder.email)
        elif outcome.status is _Status.HELD:
            result.in_progress_elsewhere.append(reminder.email)
        else:
            result.failed[reminder.email] = outcome.detail
    result.slack_calls = directory.calls.value - calls_before + campaign.calls.value
    log.info(
        "reminders %s: %d sent, %d already sent, %d not in Slack, %d failed, %d in doubt",
        week,
        len(result.sent),
        len(result.skipped_already_sent),
        len(result.not_in_slack),
        len(result.failed),
        len(result.in_doubt),
    )
    return result


def _run_campaign(
    campaign: _Campaign,
    targets: Sequence[OwnerReminder],
    concurrency: int,
    lease_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    wall: Callable[[], float],
) -> dict[str, _Outcome]:
    """Deliver to every target; owners held by another live run are re-checked until they resolve."""
    outcomes: dict[str, _Outcome] = {}
    pending = list(targets)
    deadline: float | None = None
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="patbot-remind") as pool:
        try:
            while pending:
                for reminder, outcome in zip(pending, pool.map(campaign.deliver, pending), strict=True):
                    outcomes[reminder.email] = outcome
                pending = [r for r in pending if outcomes[r.email].status is _Status.HELD]
                if deadline is None:
                    deadline = wall() + 2 * lease_seconds
                if not pending or wall() >= deadline:
                    break
                sleep(poll_seconds)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes


# --------------------------------------------------------------------------- summary


def _totals_key(week: str) -> str:
    return f"patbot:summary:totals:{week}"


def summary(
    services: Services,
    client: WebClient,
    *,
    render_summary: SummaryRenderer,
    dry_run: bool = False,
    now: datetime | None = None,
    report: FleetReport | None = None,
    reminders: ReminderResult | None = None,
    owners: SlackOwners | None = None,
    once: bool = False,
    chart: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> SummaryResult:
    """Post the admin-channel summary with the full CSV (and a chart) in its thread.

    `reminders` (this week's reminder run) supplies the owners not in Slack; without it they are
    matched here. With `once`, a second call in the same ISO week posts nothing (the scheduled job).
    """
    channel = services.settings.admin_channel
    if channel is None and not dry_run:
        raise ConfigError("PATBOT_ADMIN_CHANNEL is required but not set")
    store = _require_store(services)
    moment = now or services.clock()
    tz = services.settings.timezone
    week = iso_week(moment, tz)
    report = report if report is not None else audit_now(services, moment)
    if reminders is not None:
        not_in_slack = list(reminders.not_in_slack)
        principal_tokens = len(reminders.service_principal_tokens)
    else:
        planned, principals = plan_reminders(report, week)
        directory = owners or SlackOwners(client, store, sleep=sleep)
        _, not_in_slack = directory.resolve(r.email for r in planned)
        principal_tokens = len(principals)
    raw_previous = store.get(_totals_key(iso_week(moment - timedelta(days=7), tz)))
    previous = WeekTotals.from_json(raw_previous) if raw_previous else None

    # A dry run only says whether a chart would be attached; rendering it costs a matplotlib import.
    png = findings_chart_png(report) if chart and not dry_run else None
    has_findings = any(n for f, n in report.totals_by_finding().items() if f is not Finding.UNSCOPED)
    would_chart = png is not None or (dry_run and chart and has_findings and _chart_available())
    chart_note = None
    if not would_chart:
        chart_note = (
            "chart disabled"
            if not chart
            else "no findings to chart"
            if not has_findings
            else "no chart: matplotlib is not installed"
        )
    note = "The full report (CSV)" + (" and a chart are" if would_chart else " is") + " in the thread."
    content = build_summary(
        report,
        week,
        previous=previous,
        not_in_slack=not_in_slack,
        service_principal_tokens=principal_tokens,
        reminders=reminders,
        attachments_note=note,
    )
    message = render_summary(content)
    result = SummaryResult(
        week=week, dry_run=dry_run, summary=content, message=message, channel=channel, chart_note=chart_note
    )
    if dry_run or channel is None:
        return result

    once_key = f"patbot:summary:{week}"
    if once and not store.set(once_key, "posting", nx=True, ex=int(DEFAULT_LEASE_SECONDS)):
        result.already_posted = True
        return result
    try:
        posted = call_slack(
            lambda: client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False
            ),
            "chat.postMessage",
            sleep=sleep,
        )
    except SlackApiError as exc:
        if once:
            store.delete(once_key)
        raise SlackUnavailable(
            f"Slack answered {_error_of(exc)} when posting to PATBOT_ADMIN_CHANNEL {channel}"
            + ("; invite patbot to the channel" if _error_of(exc) == "not_in_channel" else "")
        ) from None
    except BaseException:
        if once:
            store.delete(once_key)
        raise
    result.posted = True
    result.ts = str(posted.get("ts") or "") or None
    if once:
        store.set(once_key, "posted", ex=MARKER_TTL_SECONDS)
    store.set(_totals_key(week), week_totals(report).to_json(), ex=TOTALS_TTL_SECONDS)
    _attach(client, result, to_csv(report), png, sleep)
    return result


def _attach(
    client: WebClient, result: SummaryResult, csv_text: str, png: bytes | None, sleep: Callable[[float], None]
) -> None:
    files: list[dict[str, Any]] = [
        {
            "content": csv_text,
            "filename": f"patbot-tokens-{result.week}.csv",
            "title": f"Databricks tokens, {result.week}",
        }
    ]
    if png is not None:
        files.append(
            {"file": png, "filename": f"patbot-findings-{result.week}.png", "title": "Findings by workspace"}
        )
    try:
        call_slack(
            lambda: client.files_upload_v2(file_uploads=files, channel=result.channel, thread_ts=result.ts),
            "files upload",
            sleep=sleep,
        )
    except SlackApiError as exc:
        result.problems.append(f"could not attach the report files: Slack answered {_error_of(exc)}")
        return
    except GovernanceError as exc:
        result.problems.append(f"could not attach the report files: {exc.user_message}")
        return
    except Exception as exc:  # e.g. the upload URL refused the bytes (SlackRequestError)
        log.warning("report upload failed", exc_info=True)
        result.problems.append(f"could not attach the report files ({type(exc).__name__})")
        return
    result.attached = [str(f["filename"]) for f in files]


def run_weekly(
    services: Services,
    client: WebClient,
    *,
    render_dm: DmRenderer,
    render_summary: SummaryRenderer,
    now: datetime | None = None,
    **remind_options: Any,
) -> tuple[ReminderResult, SummaryResult]:
    """The scheduled job: one audit, this week's reminders, then the summary (once per week)."""
    moment = now or services.clock()
    report = audit_now(services, moment)
    reminders = remind(services, client, render_dm=render_dm, now=moment, report=report, **remind_options)
    posted = summary(
        services,
        client,
        render_summary=render_summary,
        now=moment,
        report=report,
        reminders=reminders,
        once=True,
        sleep=remind_options.get("sleep", time.sleep),
    )
    return reminders, posted


def weekly_job(
    services: Services,
    client: WebClient,
    *,
    render_dm: DmRenderer,
    render_summary: SummaryRenderer,
    **remind_options: Any,
) -> Callable[[], None]:
    """The scheduler's job: `run_weekly` with a one-line log of what it did."""

    def job() -> None:
        reminders, posted = run_weekly(
            services, client, render_dm=render_dm, render_summary=render_summary, **remind_options
        )
        log.info(
            "weekly job %s: %d DM(s) sent, %d failed, %d in doubt; summary %s",
            reminders.week,
            len(reminders.sent),
            len(reminders.failed),
            len(reminders.in_doubt),
            "posted" if posted.posted else "already posted" if posted.already_posted else "not posted",
        )

    return job


def dm_lines(reminder: OwnerReminder) -> list[str]:
    """Plain-text lines describing one planned DM (for ``--dry-run`` output)."""
    head = f"{reminder.email} ({reminder.user_id or 'not in Slack'}): {len(reminder.tokens)} token(s)"
    lines = [head]
    for item in reminder.tokens:
        findings = ", ".join(f.value for f in item.assessment.findings)
        lines.append(f"  {item.assessment.token.short_id} in {item.workspace} [{findings}]")
    return lines


def delta_text(current: int, previous: int | None) -> str:
    """``+3``, ``-2``, ``±0``, or empty without a previous figure."""
    if previous is None:
        return ""
    diff = current - previous
    return f"+{diff}" if diff > 0 else f"-{-diff}" if diff < 0 else "±0"


def previous_count(previous: WeekTotals | None, finding: Finding) -> int | None:
    """Last week's count of a finding, if last week was recorded."""
    return None if previous is None else previous.findings.get(finding.value, 0)
