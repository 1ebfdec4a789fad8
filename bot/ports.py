"""What the flows need from the outside world, as Protocols; the Slack surface implements them.

The core never renders a message: it hands typed records (an `ApprovalRequest`, a `Token`) to a port
and the surface decides how they look.
"""

from __future__ import annotations

from typing import Protocol

from bot.approvals import ApprovalRequest
from bot.governance.models import Token


class People(Protocol):
    """Who someone is: their e-mail, whether they approve, who has an e-mail."""

    def email_of(self, user_id: str) -> str:
        """The person's e-mail (lower-cased); raises a `GovernanceError` saying why it is unknown."""
        ...

    def is_approver(self, user_id: str) -> bool:
        """Named in `PATBOT_APPROVERS`, directly or through a user group."""
        ...

    def user_for_email(self, email: str) -> str | None:
        """The chat user with this e-mail, or None when there is none (or it cannot be looked up)."""
        ...


class Notifier(Protocol):
    """Messages the flows send: the approval request and its outcome, DMs, the audit file."""

    def post_request(self, request: ApprovalRequest) -> tuple[str, str]:
        """Show a pending request to the approvers; returns where (channel, message id)."""
        ...

    def show_outcome(self, request: ApprovalRequest) -> None:
        """Replace the approvers' message of a decided request with its outcome."""
        ...

    def tell_decision(self, user_id: str, request: ApprovalRequest, *, to_owner: bool) -> None:
        """DM the requester (or the token's owner) about a decision."""
        ...

    def guide_rotation(self, user_id: str, token: Token, *, requester: str, max_days: int) -> None:
        """DM a token's owner the steps to replace their own token, with a button to revoke the old one."""
        ...

    def send_report(self, user_id: str, csv_text: str, label: str) -> bool:
        """Send the audit as a CSV file to the person privately; False when it could not be sent."""
        ...
