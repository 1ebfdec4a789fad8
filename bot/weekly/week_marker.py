"""One Redis key per ISO week says whether the scheduled weekly job ran, or who is running it.

``patbot:weekly-run:{week}`` moves through::

    (absent) --claim--> running|run|deadline --finish(complete)--> done|run|time
        ^                 |  (renewed while the job runs)  \\--finish(incomplete)--> incomplete|run|time
        +--release (the process is stopping mid-run)-------/

``absent`` (or a ``running`` marker whose lease expired: its process died) means the week's run was
missed: any replica catches it up. ``incomplete`` (a workspace could not be read, a DM failed) is
retried at the next scheduled time only, not in a loop. A takeover never DMs anyone twice: the job is
idempotent per owner and per week (`bot.weekly.ledger`, the summary's own marker). Every transition is
one Lua script on the one key, so two replicas never both hold the week.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from bot.weekly.ledger import MARKER_TTL_SECONDS

DEFAULT_RUN_LEASE_SECONDS = 300.0

# ARGV: run, now_ms, lease_ms, ttl_s → 1 claimed, 0 done or held by a live run
_CLAIM_LUA = """
local v = redis.call('GET', KEYS[1])
if v then
  local state, run, deadline = string.match(v, '^(%a+)|([^|]*)|(%d+)$')
  if state == 'done' then return 0 end
  if state == 'running' and run ~= ARGV[1] and tonumber(deadline) > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], 'running|' .. ARGV[1] .. '|' .. string.format('%.0f', tonumber(ARGV[2]) + tonumber(ARGV[3])),
  'EX', tonumber(ARGV[4]))
return 1
"""

# ARGV: run, new_value (or '' to delete), ttl_s → 1 when this run held the marker
_SET_IF_MINE_LUA = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local state, run = string.match(v, '^(%a+)|([^|]*)|')
if state ~= 'running' or run ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3])) end
return 1
"""


class WeekRuns:
    """The weekly job's per-week marker (see the module docstring)."""

    def __init__(
        self,
        store: redis.Redis[Any],
        *,
        run_id: str | None = None,
        lease_seconds: float = DEFAULT_RUN_LEASE_SECONDS,
        wall: Callable[[], float] = time.time,
        prefix: str = "patbot",
    ) -> None:
        self.store = store
        self.run_id = run_id or uuid.uuid4().hex
        self.lease_ms = int(lease_seconds * 1000)
        self.wall = wall
        self.prefix = prefix
        self._claim = store.register_script(_CLAIM_LUA)
        self._set_if_mine = store.register_script(_SET_IF_MINE_LUA)

    def key(self, week: str) -> str:
        """The marker key of one ISO week."""
        return f"{self.prefix}:weekly-run:{week}"

    def _now_ms(self) -> int:
        return int(self.wall() * 1000)

    def _read(self, week: str) -> tuple[str, str, int]:
        value = self.store.get(self.key(week))
        text = value.decode() if isinstance(value, bytes) else str(value or "")
        state, run, stamp = [*text.split("|"), "", "", ""][:3]
        return state, run, int(stamp) if stamp.isdigit() else 0

    def claim(self, week: str) -> bool:
        """Take the week for this run, unless it is done or a live run holds it."""
        args = [self.run_id, self._now_ms(), self.lease_ms, MARKER_TTL_SECONDS]
        return bool(self._claim(keys=[self.key(week)], args=args))

    def renew(self, week: str) -> bool:
        """Extend this run's lease; False if it no longer holds the week."""
        return self._replace(week, f"running|{self.run_id}|{self._now_ms() + self.lease_ms}")

    def finish(self, week: str, *, complete: bool = True) -> None:
        """The job ended: done for the week, or incomplete (retried at the next scheduled time)."""
        self._replace(week, f"{'done' if complete else 'incomplete'}|{self.run_id}|{self._now_ms()}")

    def release(self, week: str) -> None:
        """The job was interrupted (the process is stopping): the next start or replica catches up."""
        self._replace(week, "")

    def _replace(self, week: str, value: str) -> bool:
        return bool(self._set_if_mine(keys=[self.key(week)], args=[self.run_id, value, MARKER_TTL_SECONDS]))

    def done(self, week: str) -> bool:
        """Whether the week's run completed."""
        return self._read(week)[0] == "done"

    def missed(self, week: str) -> bool:
        """Nobody ran the week, or its run died: absent, or running past its lease."""
        state, _, deadline = self._read(week)
        return state == "" or (state == "running" and deadline <= self._now_ms())
