"""`/pat` text parsed into a command; pure, no Slack calls."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from bot.flows.migrate import MigrateAsk
from bot.provisioning import CreateAsk

_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_EMAIL = re.compile(r"^(?:<mailto:[^|>]+\|)?([^\s<>|@]+@[^\s<>|]+?)>?$")

SUBCOMMANDS = ("help", "audit", "revoke", "create", "rotate", "migrate", "policy")

REVOKE_USAGE = "Usage: `/pat revoke <token-id> [reason]` (the full ID or at least 8 characters of it)."
CREATE_USAGE = (
    "Usage: `/pat create <service-principal> <lifetime> [workspace=<ws>] [comment]`, for example "
    "`/pat create etl-pipeline 30d nightly load`. The principal is an application ID or display name "
    "(quote names with spaces); the lifetime is days or hours such as `30d` or `12h`."
)
ROTATE_USAGE = "Usage: `/pat rotate <token-id>` (the full ID or at least 8 characters of it)."
MIGRATE_USAGE = (
    "Usage: `/pat migrate <service-principal> [workspace=<ws>]`, for example `/pat migrate etl-pipeline "
    "workspace=prod`: an OAuth secret replaces the principal's PATs (via approval; its PATs stay until you "
    "revoke them)."
)
POLICY_USAGE = "Usage: `/pat policy` or `/pat policy max-lifetime <days> [workspace…]`."


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


def parse_create(rest: str) -> CreateAsk | None:
    """`<principal> <lifetime> [workspace=<ws>] [comment…]`; None when too short, ValueError on bad quotes."""
    try:
        words = shlex.split(rest)
    except ValueError:
        raise ValueError("Unbalanced quotes in the command.") from None
    if len(words) < 2:
        return None
    principal, lifetime, extra = words[0], words[1], words[2:]
    workspace = None
    if extra and extra[0].lower().startswith("workspace="):
        workspace = extra.pop(0).split("=", 1)[1]
    return CreateAsk(principal, lifetime, workspace, " ".join(extra))


def parse_migrate(rest: str) -> MigrateAsk | None:
    """`<principal> [workspace=<ws>]`; None without a principal, ValueError on bad quotes or extra words."""
    try:
        words = shlex.split(rest)
    except ValueError:
        raise ValueError("Unbalanced quotes in the command.") from None
    if not words:
        return None
    principal, workspace = words[0], None
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if sep and key.lower() == "workspace" and value and workspace is None:
            workspace = value
            continue
        raise ValueError(f"Unexpected `{word[:40].replace('`', '')}`. {MIGRATE_USAGE}")
    return MigrateAsk(principal, workspace)
