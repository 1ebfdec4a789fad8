"""`/pat` text parsed into a command; pure, no Slack calls."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from bot.flows.migrate import MigrateAsk
from bot.flows.scope import ScopeAsk
from bot.provisioning import CreateAsk

_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_EMAIL = re.compile(r"^(?:<mailto:[^|>]+\|)?([^\s<>|@]+@[^\s<>|]+?)>?$")

SUBCOMMANDS = ("help", "audit", "revoke", "create", "rotate", "scope", "migrate", "policy")

REVOKE_USAGE = "Usage: `/pat revoke <token-id> [reason]` (the full ID or at least 8 characters of it)."
CREATE_USAGE = (
    "Usage: `/pat create <service-principal> <lifetime> [workspace=<ws>] [scopes=<s1,s2,…>] [autoscope] "
    "[comment]`, for example `/pat create etl-pipeline 30d scopes=sql,jobs:read nightly load`. The "
    "principal is an application ID or display name (quote names with spaces); the lifetime is days or "
    "hours such as `30d` or `12h`; `scopes=` names the APIs the token may call, `autoscope` lets "
    "Databricks narrow it to what it uses."
)
ROTATE_USAGE = "Usage: `/pat rotate <token-id>` (the full ID or at least 8 characters of it)."
MIGRATE_USAGE = (
    "Usage: `/pat migrate <service-principal> [workspace=<ws>]`, for example `/pat migrate etl-pipeline "
    "workspace=prod`: an OAuth secret replaces the principal's PATs (via approval; its PATs stay until you "
    "revoke them)."
)
SCOPE_USAGE = (
    "Usage: `/pat scope <token-id> <s1,s2,…>` or `/pat scope <token-id> suggested`, for example "
    "`/pat scope 0123456789ab sql,jobs:read`. `suggested` narrows the token to what Databricks saw it use."
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


def _scope_words(words: list[str]) -> tuple[str, ...]:
    """Scope names from `sql,jobs:read` (a word ending in a comma continues into the next)."""
    return tuple(name for word in words for name in word.split(",") if name.strip())


def parse_create(rest: str) -> CreateAsk | None:
    """`<principal> <lifetime> [workspace=<ws>] [scopes=<s1,s2,…>] [autoscope] [comment…]`, options in any
    order before the comment. None when too short; ValueError on bad quotes or an unclear option."""
    try:
        words = shlex.split(rest)
    except ValueError:
        raise ValueError("Unbalanced quotes in the command.") from None
    if len(words) < 2:
        return None
    principal, lifetime, extra = words[0], words[1], words[2:]
    workspace: str | None = None
    scopes: tuple[str, ...] | None = None
    autoscope = False
    while extra:
        word = extra.pop(0)
        key, has_value, value = word.partition("=")
        key = key.lower() if has_value else ""
        if key == "workspace":
            if workspace is not None:
                raise ValueError("`workspace=` is given twice.")
            workspace = value
        elif key == "scopes":
            if scopes is not None:
                raise ValueError("`scopes=` is given twice; list them once, such as `scopes=sql,jobs:read`.")
            taken = [value]
            while taken[-1].endswith(",") and extra:  # `scopes=sql, jobs`: the list goes on
                taken.append(extra.pop(0))
            scopes = _scope_words(taken)
            if not scopes:
                raise ValueError("`scopes=` needs at least one scope name, such as `scopes=sql,jobs:read`.")
        elif word.lower() == "autoscope":
            autoscope = True
        else:
            extra.insert(0, word)
            break
    return CreateAsk(principal, lifetime, workspace, " ".join(extra), scopes or (), autoscope)


def parse_scope_change(args: tuple[str, ...]) -> ScopeAsk | None:
    """`<token> suggested` or `<token> <s1,s2,…>`; None when either part is missing."""
    if len(args) < 2:
        return None
    token, words = args[0], list(args[1:])
    if len(words) == 1 and words[0].lower() == "suggested":
        return ScopeAsk(token, suggested=True)
    if words[0].lower().startswith("scopes="):
        words[0] = words[0].split("=", 1)[1]
    scopes = _scope_words(words)
    return ScopeAsk(token, scopes) if scopes else None


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
