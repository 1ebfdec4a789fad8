"""The Slack side of `bot.ports.Notifier`: the flows' messages rendered as Block Kit and sent."""

from __future__ import annotations

import logging

from slack_sdk import WebClient

from bot.approvals import ApprovalRequest
from bot.errors import NotificationFailed
from bot.governance.models import Token
from handlers.approval_blocks import (
    admin_decided_blocks,
    admin_request_blocks,
    decision_dm_blocks,
    decision_dm_text,
    outcome_text,
)
from handlers.errors import note_failure, user_message
from handlers.metrics import Metrics
from handlers.people import SlackDirectory
from handlers.rotation_blocks import rotation_guide_blocks

log = logging.getLogger(__name__)


class SlackNotifier:
    """Posts to the admin channel and DMs people; only `post_request` may fail, the rest is best effort."""

    def __init__(
        self, client: WebClient, admin_channel: str, people: SlackDirectory, metrics: Metrics
    ) -> None:
        self.client = client
        self.admin_channel = admin_channel
        self.people = people
        self.metrics = metrics

    def post_request(self, request: ApprovalRequest) -> tuple[str, str]:
        """Post the request with Approve / Deny; `NotificationFailed` when Slack does not take it."""
        try:
            posted = self.client.chat_postMessage(
                channel=self.admin_channel,
                blocks=admin_request_blocks(request),
                text=f"{request.kind.capitalize()} request {request.id}",
            )
        except Exception as exc:
            raise NotificationFailed(user_message(exc, self.metrics)) from exc
        return str(posted["channel"]), str(posted["ts"])

    def show_outcome(self, request: ApprovalRequest) -> None:
        """Replace the admin message with the outcome (buttons gone); a lost update is logged, not raised."""
        if not request.admin_channel or not request.admin_ts:
            return
        try:
            self.client.chat_update(
                channel=request.admin_channel,
                ts=request.admin_ts,
                blocks=admin_decided_blocks(request),
                text=outcome_text(request),
            )
        except Exception as exc:  # the outcome is recorded; a lost message update must not stop the DMs
            note_failure(exc, self.metrics)

    def tell_decision(self, user_id: str, request: ApprovalRequest, *, to_owner: bool) -> None:
        """DM one person about a decision; one unreachable person must not stop the next DM."""
        # Blocks show the reason exactly as typed (a plain-text block); a migration's outcome also carries
        # what to do next and a Revoke button per PAT.
        blocks = decision_dm_blocks(request, to_owner=to_owner)
        try:
            self.client.chat_postMessage(
                channel=user_id, text=decision_dm_text(request, to_owner=to_owner), blocks=blocks
            )
        except Exception as exc:
            note_failure(exc, self.metrics)

    def guide_rotation(self, user_id: str, token: Token, *, requester: str, max_days: int) -> None:
        """DM the owner the steps to replace their token, with a button to revoke the old one."""
        try:
            self.client.chat_postMessage(
                channel=user_id,
                blocks=rotation_guide_blocks(token, max_days, requester=requester, owner=user_id),
                text="Please rotate your Databricks token",
            )
        except Exception as exc:
            raise NotificationFailed(user_message(exc, self.metrics)) from exc

    def send_report(self, user_id: str, csv_text: str, label: str) -> bool:
        """Upload the CSV report to the person's DM with the bot (files upload v2)."""
        try:
            self.client.files_upload_v2(
                channel=self.people.dm_channel(user_id),
                content=csv_text,
                filename="patbot-audit.csv",
                title=f"PAT audit: {label}"[:200],
                initial_comment=f"The full token audit ({label}).",
            )
        except Exception as exc:
            log.warning("could not send the CSV report: %s", user_message(exc, self.metrics))
            return False
        return True
