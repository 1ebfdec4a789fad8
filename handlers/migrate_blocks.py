"""Block Kit for `/pat migrate`: what the approvers are asked, and what to do once it is done. Pure."""

from __future__ import annotations

from bot.approvals import ApprovalRequest, MigratePlan, PatRef
from bot.governance.scopes import FULL_ACCESS
from handlers.blocks import ACTION_REVOKE_MIGRATED, MAX_COMMENT_CHARS, Block, clip_words, escape, section
from handlers.scope_text import scopes_text

MAX_LISTED_PATS = 20
MIGRATED = "migrated"


def _pat_text(pat: PatRef) -> str:
    comment = f" “{escape(clip_words(pat.comment, MAX_COMMENT_CHARS))}”" if pat.comment else ""
    used = f"last used {pat.last_used}" if pat.last_used else "never used"
    return f"`{escape(pat.token_id[:12])}`{comment} · {used}"


def full_access(plan: MigratePlan) -> bool:
    """Whether the new secret gets full access (because one of the PATs has it)."""
    return plan.scopes == (FULL_ACCESS,)


def migrate_lines(plan: MigratePlan) -> list[str]:
    """The request in mrkdwn lines: the principal, the secret's lifetime and scopes, the keys, its PATs."""
    lines = [
        f"*Move service principal {escape(plan.principal)}* (`{escape(plan.application_id)}`) *from PATs to "
        f"OAuth* in *{escape(plan.workspace_label)}*",
        f"New OAuth secret: lifetime {escape(plan.lifetime)} · API scopes: {escape(scopes_text(plan.scopes))} "
        "(the union of its PATs' scopes)",
    ]
    if full_access(plan):
        wide = ", ".join(f"`{escape(p)}`" for p in plan.full_access_from)
        lines.append(
            f":warning: *Full access (all-apis)*: PAT {wide} has full access, so the OAuth secret gets it too. "
            "Narrow that PAT first (`/pat scope`) to migrate with less."
        )
    lines.append(
        f"Client ID goes to secret `{escape(plan.secret_scope)}/{escape(plan.client_id_key)}`, the secret to "
        f"`{escape(plan.secret_scope)}/{escape(plan.secret_key)}`; never to Slack"
    )
    if plan.secret_key_note:
        lines.append(f"Secret keys chosen because {escape(plan.secret_key_note)}")
    pats = plan.pats
    shown = "; ".join(_pat_text(p) for p in pats[:MAX_LISTED_PATS])
    more = f" …and {len(pats) - MAX_LISTED_PATS} more" if len(pats) > MAX_LISTED_PATS else ""
    lines.append(f"Its {len(pats)} PAT(s) stay until revoked: {shown}{more}")
    return lines


def revoke_pat_button(token_id: str) -> Block:
    """A Revoke button for one PAT of a migrated principal: it asks the approvers, as any revoke does."""
    return {
        "type": "button",
        "action_id": ACTION_REVOKE_MIGRATED,
        "text": {"type": "plain_text", "text": "Revoke"},
        "style": "danger",
        "value": token_id,
    }


def migration_done_blocks(request: ApprovalRequest) -> list[Block]:
    """After a successful migration: what to change in the integration, then each PAT with a Revoke button."""
    plan = request.plan
    if not isinstance(plan, MigratePlan) or request.outcome != MIGRATED:
        return []
    scope = escape(plan.secret_scope)
    blocks = [
        section(
            "*Next: change the integration* that uses these PATs: set `DATABRICKS_CLIENT_ID` from secret "
            f"`{scope}/{escape(plan.client_id_key)}` and `DATABRICKS_CLIENT_SECRET` from "
            f"`{scope}/{escape(plan.secret_key)}` (keep `DATABRICKS_HOST`), and remove `DATABRICKS_TOKEN`. "
            "Then revoke its PATs below, each through the usual approval. Nothing was revoked."
        )
    ]
    for pat in plan.pats[:MAX_LISTED_PATS]:
        block = section(_pat_text(pat))
        block["accessory"] = revoke_pat_button(pat.token_id)
        blocks.append(block)
    if len(plan.pats) > MAX_LISTED_PATS:
        blocks.append(section(f"…and {len(plan.pats) - MAX_LISTED_PATS} more: `/pat revoke <id>` each."))
    return blocks
