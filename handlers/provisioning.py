"""`/pat create`, `/pat rotate` and `/pat policy`: plan in the core, then ask the approvers."""

from __future__ import annotations

import shlex

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.approvals import RequestKind
from bot.governance.lookup import find_token
from bot.governance.models import PrincipalType
from bot.provisioning import ProvisioningRefused, plan_create, plan_policy, plan_rotation
from handlers.approval_blocks import requested_blocks
from handlers.approvals import submit_request
from handlers.blocks import ACTION_REVOKE_OWN, Block, escape, posture_line, section
from handlers.context import SlackContext
from handlers.errors import user_message

CREATE_USAGE = (
    "Usage: `/pat create <service-principal> <lifetime> [workspace=<ws>] [comment]`, for example "
    "`/pat create etl-pipeline 30d nightly load`. The principal is an application ID or display name "
    "(quote names with spaces); the lifetime is days or hours such as `30d` or `12h`."
)
ROTATE_USAGE = "Usage: `/pat rotate <token-id>` (the full ID or at least 8 characters of it)."
POLICY_USAGE = "Usage: `/pat policy` or `/pat policy max-lifetime <days> [workspace…]`."
NOT_APPROVER = "Only approvers can see or change workspace token policy."


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        raise ProvisioningRefused("Unbalanced quotes in the command.") from None


def create_command(ctx: SlackContext, client: WebClient, user_id: str, rest: str) -> list[Block]:
    """Plan a new service-principal token and send it for approval."""
    words = _split(rest)
    if len(words) < 2:
        return [section(CREATE_USAGE)]
    principal, lifetime_text, extra = words[0], words[1], words[2:]
    selector = None
    if extra and extra[0].lower().startswith("workspace="):
        selector = extra.pop(0).split("=", 1)[1]
    settings = ctx.services.settings
    plan = plan_create(
        ctx.services.fleet,
        principal=principal,
        lifetime_text=lifetime_text,
        selector=selector,
        comment=" ".join(extra),
        max_days=settings.max_lifetime_days,
        secret_scope=settings.secret_scope,
    )
    request = submit_request(
        ctx,
        client,
        RequestKind.CREATE,
        f"{plan.principal.name}@{plan.workspace.host}",
        plan.workspace.host,
        user_id,
        " ".join(extra),
        plan.params(),
        plan.principal.name,
    )
    return requested_blocks(request)


def rotate_command(ctx: SlackContext, client: WebClient, user_id: str, rest: str) -> list[Block]:
    """A service principal's token: approval to replace it. A user's token: a guided DM to its owner."""
    words = rest.split()
    if not words:
        return [section(ROTATE_USAGE)]
    settings = ctx.services.settings
    report = ctx.audit()
    item = find_token(report, words[0])
    if item.principal_type is PrincipalType.SERVICE_PRINCIPAL:
        plan = plan_rotation(
            ctx.services.fleet,
            item,
            max_days=settings.max_lifetime_days,
            secret_scope=settings.secret_scope,
            known_key=ctx.operations.secret_keys.lookup(item.token.token_id),
        )
        params = plan.params()
        request = submit_request(
            ctx,
            client,
            RequestKind.ROTATE,
            item.token.token_id,
            item.token.workspace,
            user_id,
            " ".join(words[1:]),
            params,
            plan.principal.name,
        )
        return requested_blocks(request)
    owner = item.token.owner
    try:
        owner_id = str(client.users_lookupByEmail(email=owner)["user"]["id"])
    except SlackApiError:
        return [
            section(
                f"Token `{item.token.short_id}` belongs to {escape(owner)}, who is not in this Slack "
                "workspace, so I cannot guide them through the rotation."
            )
        ]
    client.chat_postMessage(
        channel=owner_id,
        blocks=rotation_guide_blocks(
            item.token.token_id, item.token.comment, settings.max_lifetime_days, user_id
        ),
        text="Please rotate your Databricks token",
    )
    who = "you" if owner_id == user_id else escape(owner)
    return [section(f"I sent {who} a DM with the steps to rotate token `{item.token.short_id}`.")]


def rotation_guide_blocks(token_id: str, comment: str, max_days: int, requester: str) -> list[Block]:
    """The DM guiding a user through replacing their own token."""
    label = f" (“{escape(comment[:80])}”)" if comment else ""
    return [
        section(
            f"<@{requester}> asked for your Databricks token `{token_id[:12]}`{label} to be rotated.\n"
            f"1. In Databricks, *User Settings → Developer → Access tokens → Generate new token*, with a "
            f"lifetime of at most {max_days} days.\n"
            "2. Put the new token wherever the old one is used (jobs, BI tools, CI secrets).\n"
            "3. Come back here and revoke the old one."
        ),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "I've replaced it, revoke the old one"},
                    "action_id": ACTION_REVOKE_OWN,
                    "value": token_id,
                    "style": "danger",
                }
            ],
        },
    ]


def policy_command(ctx: SlackContext, client: WebClient, user_id: str, words: tuple[str, ...]) -> list[Block]:
    """`/pat policy`: posture per workspace; `/pat policy max-lifetime <days> [ws…]`: via approval."""
    if not ctx.directory.is_approver(user_id):
        return [section(NOT_APPROVER)]
    fleet = ctx.services.fleet
    if not words:
        return policy_blocks(ctx)
    if words[0].lower() != "max-lifetime" or len(words) < 2:
        return [section(POLICY_USAGE)]
    days, workspaces = plan_policy(fleet, words[1], words[2:])
    labels = ", ".join(ws.label for ws in workspaces)
    subject = "max-lifetime:" + ",".join(sorted(ws.host for ws in workspaces))
    request = submit_request(
        ctx,
        client,
        RequestKind.POLICY,
        subject,
        workspaces[0].host if len(workspaces) == 1 else "*",
        user_id,
        "",
        {"days": str(days), "hosts": ",".join(ws.host for ws in workspaces), "labels": labels},
        None,
    )
    return requested_blocks(request)


def policy_blocks(ctx: SlackContext) -> list[Block]:
    """Token posture of every workspace, with a warning where it allows more than patbot's maximum."""
    max_days = ctx.services.settings.max_lifetime_days
    lines = []
    for ws in ctx.services.fleet.workspaces():
        try:
            posture = ctx.services.fleet.gateway(ws).posture()
        except Exception as exc:  # one unreadable workspace does not hide the others
            lines.append(posture_line(ws.label, user_message(exc, ctx.metrics), max_days))
            continue
        lines.append(posture_line(ws.label, posture, max_days))
    return [section("*Workspace token policy*\n" + "\n".join(lines))]
