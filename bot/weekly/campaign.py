"""Delivering one run's reminder DMs: each owner claimed in the ledger, paced, posted, marked sent."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import redis

from bot.weekly.chat import Chat, ChatNoAnswer, ChatNotSent, ChatRefused
from bot.weekly.ledger import Claim, ReminderLedger
from bot.weekly.models import DmRenderer, OwnerReminder, Rendered
from bot.weekly.options import RemindOptions
from bot.weekly.pacing import RatePacer
from bot.weekly.slack_calls import CallTally

log = logging.getLogger(__name__)

MAX_RATE_LIMITED_ATTEMPTS = 50


class Status(StrEnum):
    """What became of one owner's DM in this run."""

    SENT = "sent"
    ALREADY_SENT = "already_sent"
    HELD = "held"
    IN_DOUBT = "in_doubt"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """An owner's `Status`, with the reason when it failed or is in doubt."""

    status: Status
    detail: str = ""


class Campaign:
    """One run's DMs: claim, pace, post, mark — per owner, on a bounded pool."""

    def __init__(
        self,
        chat: Chat,
        ledger: ReminderLedger,
        pacer: RatePacer,
        render_dm: DmRenderer,
        max_attempts: int = MAX_RATE_LIMITED_ATTEMPTS,
    ) -> None:
        self.chat = chat
        self.ledger = ledger
        self.pacer = pacer
        self.render_dm = render_dm
        self.max_attempts = max_attempts
        self.calls = CallTally()

    def deliver(self, reminder: OwnerReminder) -> Outcome:
        email = reminder.email
        try:
            claim = self.ledger.claim(email)
        except redis.RedisError as exc:
            return Outcome(Status.FAILED, f"cannot reach Redis ({type(exc).__name__})")
        if claim is Claim.SENT:
            return Outcome(Status.ALREADY_SENT)
        if claim is Claim.HELD:
            return Outcome(Status.HELD)
        if claim is Claim.IN_DOUBT:
            return Outcome(Status.IN_DOUBT, "an earlier run stopped while Slack was answering")
        try:
            message = self.render_dm(reminder)
        except Exception:
            log.exception("cannot render the reminder for %s", email)
            self._release(email)
            return Outcome(Status.FAILED, "could not render the message")
        return self._post(reminder, message)

    def _post(self, reminder: OwnerReminder, message: Rendered) -> Outcome:
        email = reminder.email
        for _attempt in range(self.max_attempts):
            self.pacer.wait()
            try:
                if not self.ledger.begin_send(email):
                    return Outcome(Status.HELD)  # our lease ran out and another run took over
            except redis.RedisError as exc:
                return Outcome(Status.FAILED, f"cannot reach Redis ({type(exc).__name__})")
            self.calls.add()
            try:
                # A user ID posts to the app's DM with that user.
                self.chat.post_message(reminder.user_id or "", message.text, message.blocks)
            except ChatRefused as exc:
                wait = exc.retry_after
                if wait is None:
                    self._release(email)
                    return Outcome(Status.FAILED, f"Slack answered {exc.error}")
                self.pacer.rate_limited(wait)
                # If Redis fails here the lease simply runs out; the DM was not delivered either way.
                with contextlib.suppress(redis.RedisError):
                    self.ledger.back_off(email, wait)
                continue
            except ChatNotSent as exc:
                self._release(email)
                return Outcome(Status.FAILED, str(exc))
            except ChatNoAnswer as exc:
                # Timeout or dropped connection after the request left: Slack may have posted it.
                log.warning("no answer from Slack for %s's reminder (%s)", email, exc)
                return Outcome(Status.IN_DOUBT, f"no answer from Slack ({exc})")
            self.pacer.succeeded()
            try:
                self.ledger.mark_sent(email)
            except redis.RedisError as exc:
                return Outcome(Status.IN_DOUBT, f"sent, but the marker was not stored ({type(exc).__name__})")
            return Outcome(Status.SENT)
        self._release(email)
        return Outcome(Status.FAILED, f"still rate limited after {self.max_attempts} attempts")

    def _release(self, email: str) -> None:
        try:
            self.ledger.release(email)
        except redis.RedisError:
            log.warning("cannot release the reminder claim for %s; it frees itself after its lease", email)


def run_campaign(
    campaign: Campaign, targets: Sequence[OwnerReminder], options: RemindOptions
) -> dict[str, Outcome]:
    """Deliver to every target; owners held by another live run are re-checked until they resolve."""
    concurrency, lease_seconds, poll_seconds = (
        options.concurrency,
        options.lease_seconds,
        options.poll_seconds,
    )
    sleep, wall = options.sleep, options.wall
    outcomes: dict[str, Outcome] = {}
    pending = list(targets)
    deadline: float | None = None
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="patbot-remind") as pool:
        try:
            while pending:
                for reminder, outcome in zip(pending, pool.map(campaign.deliver, pending), strict=True):
                    outcomes[reminder.email] = outcome
                pending = [r for r in pending if outcomes[r.email].status is Status.HELD]
                if deadline is None:
                    deadline = wall() + 2 * lease_seconds
                if not pending or wall() >= deadline:
                    break
                sleep(poll_seconds)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes
