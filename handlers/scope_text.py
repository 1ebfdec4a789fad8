"""Plain words for API scopes and for who may use tokens, as Slack mrkdwn (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.governance.findings import narrowable, suggested_scopes, usage_known
from bot.governance.models import GranteeKind, Posture, Token, TokenUser
from bot.governance.scopes import FULL_ACCESS, Capability, is_full_access, parse_scope
from handlers.blocks import escape

_KIND_WORDS = {
    GranteeKind.GROUP: "group",
    GranteeKind.USER: "user",
    GranteeKind.SERVICE_PRINCIPAL: "service principal",
}


def scopes_text(scopes: Sequence[str]) -> str:
    """E.g. "full access", "sql, jobs (read)", "sql (read, read-only queries)"; order as given."""
    if is_full_access(scopes):
        return "full access"
    merged: dict[str, set[Capability]] = {}
    for text in scopes:
        scope = parse_scope(text)
        merged.setdefault(scope.name, set()).update(scope.capabilities)
    parts = []
    for name, caps in merged.items():
        label = "every API" if name == FULL_ACCESS else escape(name)
        if Capability.WRITE in caps:
            parts.append(label)
            continue
        slices = (["read"] if Capability.READ in caps else []) + (
            ["read-only queries"] if Capability.QUERY in caps else []
        )
        parts.append(f"{label} ({', '.join(slices)})")
    return ", ".join(parts)


def token_scope_line(token: Token) -> str:
    """The token's scopes and, where Databricks inferred them, what it uses and could be narrowed to."""
    line = f"scopes: {scopes_text(token.scopes)}"
    if not usage_known(token):
        return line
    line += f" · uses: {scopes_text(token.used_scopes)}"
    suggested = [s.text for s in suggested_scopes(token)]
    if narrowable(token) and suggested:
        line += f" · can be narrowed to `{escape(','.join(suggested))}`"
    return line


def _grantee(user: TokenUser) -> str:
    shown = escape(user.display_name or user.name)
    if user.everyone:
        return "*everyone* (the `users` group) :warning:"
    manage = " (can manage)" if user.permission == "CAN_MANAGE" else ""
    return f"{_KIND_WORDS[user.kind]} `{shown}`{manage}"


def token_users_text(posture: Posture | None) -> str:
    """Who may create and use tokens in one workspace, for `/pat policy`; everyone is flagged."""
    if posture is None or posture.token_users is None:
        return "Who may use tokens: _could not be read_ (token permissions need the Premium plan)."
    if not posture.token_users:
        return "Who may use tokens: nobody but workspace admins."
    listed = ", ".join(_grantee(u) for u in posture.token_users)
    return f"Who may use tokens: {listed}."
