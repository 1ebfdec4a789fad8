"""Finding a token by full ID or unique prefix across the fleet."""

from __future__ import annotations

from collections.abc import Sequence

from bot.errors import AmbiguousToken, TokenNotFound
from bot.governance.models import FleetReport, TokenAssessment

MIN_PREFIX = 8
SHOWN_ID = 12


def distinguishing_prefixes(ids: Sequence[str], minimum: int = SHOWN_ID) -> list[str]:
    """The shortest prefixes (at least `minimum` characters) that tell every ID apart."""
    out = []
    for token_id in ids:
        length = min(minimum, len(token_id))
        while length < len(token_id) and any(
            other != token_id and other[:length] == token_id[:length] for other in ids
        ):
            length += 1
        out.append(token_id[:length])
    return out


def find_token(report: FleetReport, text: str) -> TokenAssessment:
    """The one token whose ID is `text` or starts with it (≥ 8 characters).

    Raises `TokenNotFound` (naming workspaces that could not be searched) or `AmbiguousToken`.
    """
    wanted = text.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise TokenNotFound(
            f"`{wanted[:40]}` is too short: give the token ID or at least {MIN_PREFIX} characters of it."
        )
    tokens = report.tokens
    exact = [t for t in tokens if t.token.token_id.lower() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [t for t in tokens if t.token.token_id.lower().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        unread = [ws.workspace.label for ws in report.failed]
        note = f" (could not search {', '.join(unread)})" if unread else ""
        raise TokenNotFound(
            f"No token with an ID starting with `{wanted[:40]}` in the governed workspaces{note}."
        )
    labels = {ws.workspace.host: ws.workspace.label for ws in report.workspaces}
    shown = distinguishing_prefixes([t.token.token_id for t in matches])
    candidates = [
        f"`{prefix}` in {labels.get(t.token.workspace, t.token.workspace)} ({t.token.owner})"
        for prefix, t in zip(shown, matches, strict=True)
    ]
    raise AmbiguousToken(
        f"`{wanted}` matches {len(matches)} tokens; give more characters:\n" + "\n".join(candidates),
        candidates=shown,
    )
