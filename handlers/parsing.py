"""`/pat` text parsed into a command; pure, no Slack calls."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_EMAIL = re.compile(r"^(?:<mailto:[^|>]+\|)?([^\s<>|@]+@[^\s<>|]+?)>?$")

SUBCOMMANDS = ("help", "audit", "revoke", "create", "rotate", "policy")


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed `/pat` invocation."""

    name: str
    args: tuple[str, ...] = field(default_factory=tuple)
    rest: str = ""


@dataclass(frozen=True, slots=True)
class AuditScope:
    """What `/pat audit …` asks for: own tokens, the fleet, one user, or one workspace."""

    kind: str  # "own" | "all" | "user" | "email" | "workspace"
    value: str = ""


def unescape(text: str) -> str:
    """Undo Slack's escaping of typed `&`, `<`, `>` (rendering escapes them again)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_command(text: str) -> Command:
    """Split `/pat` text into a subcommand and its arguments; anything unknown is `help`."""
    text = unescape(text or "")
    parts = text.strip().split()
    if not parts:
        return Command("help")
    name = parts[0].lower()
    if name not in SUBCOMMANDS:
        return Command("help", rest=parts[0])
    rest = (text or "").strip()[len(parts[0]) :].strip()
    return Command(name, tuple(parts[1:]), rest)


def parse_audit_scope(args: tuple[str, ...]) -> AuditScope:
    """`/pat audit` scopes: nothing, `all`, `<@U…>` / `<@U…|name>`, an e-mail, or a workspace."""
    if not args:
        return AuditScope("own")
    target = args[0]
    if target.lower() == "all":
        return AuditScope("all")
    mention = _USER_MENTION.match(target)
    if mention:
        return AuditScope("user", mention.group(1))
    email = _EMAIL.match(target)
    if email and "@" in email.group(1):
        return AuditScope("email", email.group(1).lower())
    return AuditScope("workspace", target.strip("<>").split("|")[-1])
