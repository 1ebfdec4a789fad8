"""The exactly-once ledger: one Redis key per owner and ISO week says whether their DM went out.

Each owner has one key, ``patbot:remind:{week}:{email}``, that moves through::

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
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import redis

DEFAULT_LEASE_SECONDS = 120.0
MARKER_TTL_SECONDS = 8 * 24 * 3600  # a week's markers outlive the week, then vanish


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
