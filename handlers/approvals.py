"""Revoke requests and decisions: `/pat revoke`, Approve / Deny, the owner's confirmation, Home's Revoke."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.approvals import (
    ApprovalRequest,
    ApprovalStore,
    DuplicateRequest,
    RequestExpired,
    RequestKind,
    RequestState,
)
from bot.errors import ConfigError, GovernanceError
from bot.governance.decisions import SELF_SERVICE, may_decide
from bot.governance.lookup import find_token
from bot.governance.models import PrincipalType, TokenAssessment
from handlers.approval_blocks import (
    ACTION_APPROVE,
    ACTION_CANCEL,
    ACTION_CONFIRM,
    ACTION_DENY,
    VIEW_CONFIRM,
    admin_decided_blocks,
    admin_request_blocks,
    decision_dm_text,
    message_modal,
    outcome_text,
    requested_blocks,
    self_confirm_blocks,
    self_confirm_modal,
)
from handlers.blocks import ACTION_REVOKE_OWN, Block, error_blocks, findings_text, section
from handlers.context import SlackContext
from handlers.errors import user_message

log = logging.getLogger(__name__)

REVOKE_USAGE = "Usage: `/pat revoke <token-id> [reason]` (the full ID or at least 8 characters of it)."


def store_of(ctx: SlackContext) -> ApprovalStore:
    """The approval store; every deployment has one (embedded or Redis)."""
    store = ctx.services.approvals
    if store is None:
        raise ConfigError("REDIS_URL: no approvals store is configured")
    return store


def token_params(item: TokenAssessment, workspace_label: str) -> dict[str, str]:
    """What the admin message shows about a token (no secrets: the API never returns values)."""
    return {
        "workspace_label": workspace_label,
        "owner_display": item.token.owner,
        "comment": item.token.comment,
        "findings": findings_text(item.findings),
    }


def revoke_request(
    ctx: SlackContext, client: WebClient, user_id: str, token_text: str, reason: str
) -> list[Block]:
    """Owner: a "Revoke now / Cancel" confirmation. Anyone else: an approval request to the admin channel."""
    request = start_revoke(ctx, client, user_id, token_text, reason)
    if request.params.get(SELF_SERVICE) == "1":
        return self_confirm_blocks(request)
    return requested_blocks(request)


def start_revoke(
    ctx: SlackContext, client: WebClient, user_id: str, token_text: str, reason: str
) -> ApprovalRequest:
    """The owner's self-service request (awaiting their confirmation), or a request posted to the approvers."""
    store = store_of(ctx)
    email = ctx.directory.email_of(user_id)
    report = ctx.audit()
    item = find_token(report, token_text)
    token = item.token
    label = next((ws.workspace.label for ws in report.workspaces if ws.workspace.host == token.workspace), "")
    params = token_params(item, label)
    is_owner = token.owner.lower() == email and item.principal_type is not PrincipalType.SERVICE_PRINCIPAL
    if is_owner:
        try:
            request = store.create(
                RequestKind.REVOKE,
                token.token_id,
                token.workspace,
                user_id,
                reason,
                {**params, SELF_SERVICE: "1"},
                owner=token.owner,
            )
        except DuplicateRequest as dup:
            if dup.existing.requester != user_id or dup.existing.params.get(SELF_SERVICE) != "1":
                raise
            request = dup.existing
        return request

    def ask_approvers() -> ApprovalRequest:
        return submit_request(
            ctx,
            client,
            RequestKind.REVOKE,
            token.token_id,
            token.workspace,
            user_id,
            reason,
            params,
            token.owner,
        )

    try:
        return ask_approvers()
    except DuplicateRequest as dup:
        # An owner's unconfirmed "Revoke now?" must not block everyone else until it expires:
        # withdraw it (atomically: if the owner confirms first, this raises) and ask the approvers.
        if dup.existing.params.get(SELF_SERVICE) != "1":
            raise
        store.decide(dup.existing.id, RequestState.CANCELLED, "patbot")
        return ask_approvers()


def submit_request(
    ctx: SlackContext,
    client: WebClient,
    kind: RequestKind,
    subject: str,
    workspace: str,
    requester: str,
    reason: str,
    params: dict[str, str],
    owner: str | None,
) -> ApprovalRequest:
    """Store a request and post it to the admin channel; an unpostable request is cancelled again."""
    store = store_of(ctx)
    request = store.create(kind, subject, workspace, requester, reason, params, owner=owner)
    try:
        channel = ctx.services.settings.admin_channel or ""
        posted = client.chat_postMessage(
            channel=channel,
            blocks=admin_request_blocks(request),
            text=f"{kind.capitalize()} request {request.id}",
        )
        return store.attach_message(request.id, str(posted["channel"]), str(posted["ts"]))
    except Exception:
        # Nothing may stay pending that no approver can see.
        try:
            store.decide(request.id, RequestState.CANCELLED, "patbot")
        except GovernanceError:
            log.warning("could not cancel unposted request %s", request.id)
        raise


def register_approvals(app: App, ctx: SlackContext) -> None:
    """Wire the decision buttons, the owner's confirmation and the Home tab's Revoke button."""

    def ack_only(ack: Ack) -> None:
        ack()

    def on_decision(decision: RequestState) -> Any:
        def run(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
            decide_and_finish(ctx, client, body, respond, decision)

        return run

    app.action(ACTION_APPROVE)(ack=ack_only, lazy=[on_decision(RequestState.APPROVED)])
    app.action(ACTION_DENY)(ack=ack_only, lazy=[on_decision(RequestState.DENIED)])
    app.action(ACTION_CONFIRM)(ack=ack_only, lazy=[on_decision(RequestState.APPROVED)])
    app.action(ACTION_CANCEL)(ack=ack_only, lazy=[on_decision(RequestState.CANCELLED)])

    def revoke_own(body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user_id = str(body["user"]["id"])
        token_id = str(body["actions"][0].get("value", ""))
        if body.get("response_url"):  # a message, e.g. the weekly DM
            try:
                blocks = revoke_request(ctx, client, user_id, token_id, "from patbot's reminder")
            except Exception as exc:
                blocks = error_blocks(user_message(exc, ctx.metrics))
            respond(blocks=blocks, text="Revoke", response_type="ephemeral", replace_original=False)
            return
        opened = client.views_open(
            trigger_id=str(body["trigger_id"]), view=message_modal("Revoke token", "Looking up the token…")
        )
        view_id = str(opened["view"]["id"])
        try:
            request = _own_request(ctx, client, user_id, token_id)
            view = self_confirm_modal(request)
        except Exception as exc:
            view = message_modal("Revoke token", user_message(exc, ctx.metrics))
        client.views_update(view_id=view_id, view=view)

    app.action(ACTION_REVOKE_OWN)(ack=ack_only, lazy=[revoke_own])

    def ack_submission(ack: Ack) -> None:
        ack(response_action="update", view=message_modal("Revoke token", "Revoking…"))

    def confirm_submission(body: dict[str, Any], client: WebClient) -> None:
        user_id = str(body["user"]["id"])
        view = body["view"]
        request_id = str(view.get("private_metadata", ""))
        try:
            request = _decide(ctx, request_id, user_id, RequestState.APPROVED)
            text = outcome_text(request)
        except Exception as exc:
            text = user_message(exc, ctx.metrics)
        client.views_update(view_id=str(view["id"]), view=message_modal("Revoke token", text))

    app.view(VIEW_CONFIRM)(ack=ack_submission, lazy=[confirm_submission])


def _own_request(ctx: SlackContext, client: WebClient, user_id: str, token_id: str) -> ApprovalRequest:
    request = start_revoke(ctx, client, user_id, token_id, "from patbot's Home tab")
    if request.params.get(SELF_SERVICE) != "1":  # not the owner: the approvers were asked instead
        raise GovernanceError(str(requested_blocks(request)[0]["text"]["text"]))
    return request


def _decide(ctx: SlackContext, request_id: str, actor: str, decision: RequestState) -> ApprovalRequest:
    """Check who may decide, claim the decision atomically, act if approved; returns the final request."""
    store = store_of(ctx)
    request = store.get(request_id)
    self_service = request.params.get(SELF_SERVICE) == "1"
    verdict = may_decide(
        request,
        actor,
        decision,
        actor_is_approver=False if self_service else ctx.directory.is_approver(actor),
    )
    if not verdict.allowed:
        raise GovernanceError(verdict.reason)
    transition = store.decide(request_id, decision, actor)
    request = transition.request
    if request.state is RequestState.APPROVED:
        request = ctx.operations.execute(request)
    return request


def decide_and_finish(
    ctx: SlackContext, client: WebClient, body: dict[str, Any], respond: Respond, decision: RequestState
) -> None:
    """A decision button: refuse, or decide, act, update the admin message and tell the people involved."""
    actor = str(body["user"]["id"])
    request_id = str(body["actions"][0].get("value", ""))
    try:
        request = _decide(ctx, request_id, actor, decision)
    except RequestExpired as exc:
        if exc.transitioned:
            update_admin_message(ctx, client, exc.request)
        respond(text=exc.user_message, response_type="ephemeral", replace_original=False)
        return
    except Exception as exc:
        respond(text=user_message(exc, ctx.metrics), response_type="ephemeral", replace_original=False)
        return
    if request.params.get(SELF_SERVICE) == "1":
        respond(blocks=[section(outcome_text(request))], text=outcome_text(request), replace_original=True)
        return
    update_admin_message(ctx, client, request)
    notify(ctx, client, request)


def update_admin_message(ctx: SlackContext, client: WebClient, request: ApprovalRequest) -> None:
    """Replace the admin message with the outcome (buttons gone)."""
    if not request.admin_channel or not request.admin_ts:
        return
    try:
        client.chat_update(
            channel=request.admin_channel,
            ts=request.admin_ts,
            blocks=admin_decided_blocks(request),
            text=outcome_text(request),
        )
    except Exception as exc:  # the outcome is recorded; a lost message update must not stop the DMs
        user_message(exc, ctx.metrics)


def notify(ctx: SlackContext, client: WebClient, request: ApprovalRequest) -> None:
    """DM the requester (any decision) and the token's owner (approval) about the outcome."""
    recipients = [(request.requester, False)]
    if request.state is RequestState.APPROVED and request.owner and "@" in request.owner:
        try:
            owner_id = str(client.users_lookupByEmail(email=request.owner)["user"]["id"])
        except Exception as exc:  # not in Slack, or Slack unreachable: the requester is still told
            user_message(exc, ctx.metrics)
            owner_id = ""
        if owner_id and owner_id != request.requester:
            recipients.append((owner_id, True))
    for user_id, to_owner in recipients:
        try:
            client.chat_postMessage(channel=user_id, text=decision_dm_text(request, to_owner=to_owner))
        except Exception as exc:  # one unreachable person must not stop the next DM
            user_message(exc, ctx.metrics)


def sweep_expired(ctx: SlackContext, client: WebClient) -> int:
    """Expire overdue requests and update their admin messages; returns how many expired."""
    expired = store_of(ctx).expire_due()
    for request in expired:
        update_admin_message(ctx, client, request)
    return len(expired)
