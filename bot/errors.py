"""The governance error family: every failure a user can see carries a short `user_message`."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base of every expected failure; `user_message` is safe to show in Slack or on a terminal."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class ConfigError(GovernanceError):
    """A setting is missing or invalid; the message names the variable."""


class TokenNotFound(GovernanceError):
    """No token matches the given id or prefix."""


class AmbiguousToken(GovernanceError):
    """A prefix matches several tokens."""

    def __init__(self, user_message: str, candidates: list[str]) -> None:
        super().__init__(user_message)
        self.candidates = candidates


class UnknownWorkspace(GovernanceError):
    """A workspace selector matched no governed workspace."""


class NotificationFailed(GovernanceError):
    """A message the flow depends on (e.g. the approval request) could not be delivered."""
