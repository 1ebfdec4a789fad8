"""Token lifetimes: parsing `30d` / `12h` and the limits a new token must respect."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.errors import GovernanceError
from bot.governance.models import Finding, TokenAssessment

_LIFETIME = re.compile(r"^(\d{1,5})([dh])$")

DATABRICKS_INACTIVITY_DAYS = 90  # Databricks revokes a PAT unused for this long


class AutoRevocationState(StrEnum):
    """Where a token stands against Databricks' own revocation of unused tokens."""

    COUNTING = "counting"  # used recently enough: revoked after `days_left` more idle days
    DUE = "due"  # idle past the limit: Databricks revokes it any time now
    EXPIRED = "expired"  # already expired: no longer usable, nothing left to revoke it for


@dataclass(frozen=True, slots=True)
class AutoRevocation:
    """A token's inactivity-revocation status; `days_left` only means something while counting."""

    state: AutoRevocationState
    days_left: int = 0
    limit_days: int = DATABRICKS_INACTIVITY_DAYS


def auto_revocation(item: TokenAssessment, limit_days: int = DATABRICKS_INACTIVITY_DAYS) -> AutoRevocation:
    """What is true about Databricks' inactivity revocation for this token.

    0 days left does not mean "today": the token has reached or passed the limit and is due.
    """
    if Finding.EXPIRED in item.findings:
        return AutoRevocation(AutoRevocationState.EXPIRED, limit_days=limit_days)
    if item.days_until_auto_revoke <= 0:
        return AutoRevocation(AutoRevocationState.DUE, limit_days=limit_days)
    return AutoRevocation(AutoRevocationState.COUNTING, item.days_until_auto_revoke, limit_days)


class InvalidLifetime(GovernanceError):
    """A lifetime that cannot be parsed or breaks a limit."""


def parse_lifetime(text: str) -> timedelta:
    """`30d` or `12h` → a positive duration; anything else (including 0 and "never") is refused."""
    match = _LIFETIME.match(text.strip().lower())
    if not match:
        raise InvalidLifetime(
            f"`{text[:20]}` is not a lifetime: use days or hours such as `30d` or `12h`. Tokens always expire."
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise InvalidLifetime("A lifetime must be at least 1 hour. Tokens always expire.")
    return timedelta(days=amount) if unit == "d" else timedelta(hours=amount)


def check_lifetime(lifetime: timedelta, max_days: int, workspace_max_days: int, workspace: str) -> None:
    """Refuse a lifetime above the bot's maximum or the workspace's `maxTokenLifetimeDays`."""
    if lifetime > timedelta(days=max_days):
        raise InvalidLifetime(
            f"{describe(lifetime)} is above the maximum of {max_days} days (PATBOT_MAX_LIFETIME_DAYS)."
        )
    if lifetime > timedelta(days=workspace_max_days):
        raise InvalidLifetime(
            f"{describe(lifetime)} is above {workspace}'s maxTokenLifetimeDays of {workspace_max_days} days."
        )


def policy_lifetime(max_days: int, workspace_max_days: int) -> timedelta:
    """The lifetime a rotated token gets: the longest both limits allow."""
    return timedelta(days=min(max_days, workspace_max_days))


def describe(lifetime: timedelta) -> str:
    """`30 days`, `12 hours`, `1 day 6 hours`."""
    days, hours = lifetime.days, lifetime.seconds // 3600
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return " ".join(parts) or "0 hours"
