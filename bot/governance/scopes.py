"""Databricks API scopes: the catalogue of names, parsing, validation and the "covers" order.

A scope names an API area (``sql``, ``jobs``, ``unity-catalog``); a modifier after a colon narrows it:
``:read`` to the area's read operations (GET and HEAD), ``:restricted-query`` (``sql`` only) to read-only
SQL queries; ``sql:read:restricted-query`` combines both. ``all-apis`` is full access, like no scopes.

Each scope is modelled as the set of *capabilities* it grants in its area (read, write and, for ``sql``,
read-only queries), so "wider", "covers" and "narrow to what it uses" are plain set operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from bot.errors import GovernanceError

FULL_ACCESS = "all-apis"
MINTS_TOKENS = "authentication"
SQL = "sql"
READ = "read"
RESTRICTED_QUERY = "restricted-query"

# Workspace API scope names, from Databricks' reference "API scopes"
# (https://docs.databricks.com/api/workspace/scopes) and the pages that cite it: "Scoped personal access
# tokens" (dev-tools/auth/pat), "Narrow API scopes with scope modifiers" (dev-tools/auth/scope-modifiers)
# and the Databricks Apps scope list (dev-tools/databricks-apps/auth). Databricks serves no endpoint that
# lists them, so this is a snapshot: a name Databricks adds later is refused in patbot's input until it is
# added here, but never when Databricks reports it on a token.
SCOPE_CATALOGUE: Mapping[str, str] = {
    FULL_ACCESS: "every API the owner can call",
    "access-management": "users, groups, service principals and object permissions",
    "ai-functions": "AI Functions",
    "ai-gateway": "AI Gateway",
    "alerts": "Databricks SQL alerts",
    "apps": "Databricks Apps",
    MINTS_TOKENS: "authentication settings, tokens and secrets of principals",
    "clusters": "clusters",
    "dashboards": "AI/BI dashboards",
    "files": "files and Unity Catalog volumes",
    "genie": "Genie spaces",
    "jobs": "Lakeflow Jobs",
    "model-serving": "model serving endpoints",
    "pipelines": "Lakeflow Declarative Pipelines",
    "postgres": "Lakebase",
    "query-history": "SQL query history",
    "scim": "SCIM users, groups and service principals",
    SQL: "SQL warehouses and queries",
    "unity-catalog": "Unity Catalog",
    "vector-search": "Vector Search",
    "workspace": "notebooks, folders and workspace objects",
}


class Capability(StrEnum):
    """One slice of what a scope allows in its API area."""

    READ = "read"  # GET and HEAD operations
    WRITE = "write"  # every other operation (for sql, also statements that change data)
    QUERY = "query"  # read-only SQL statements (sql only)


_ALL = frozenset(Capability)
_NO_QUERY = frozenset({Capability.READ, Capability.WRITE})


def _full(name: str) -> frozenset[Capability]:
    return _ALL if name in (SQL, FULL_ACCESS) else _NO_QUERY


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """One API scope: an area name and its modifiers."""

    name: str
    read: bool = False
    restricted_query: bool = False

    @property
    def text(self) -> str:
        """The Databricks spelling, modifiers in documented order: ``sql:read:restricted-query``."""
        mods = ([READ] if self.read else []) + ([RESTRICTED_QUERY] if self.restricted_query else [])
        return ":".join([self.name, *mods])

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What it allows in its area: a modifier keeps only its slice, both modifiers their union."""
        if not (self.read or self.restricted_query):
            return _full(self.name)
        caps: set[Capability] = set()
        if self.read:
            caps.add(Capability.READ)
        if self.restricted_query:
            caps.add(Capability.QUERY)
        return frozenset(caps)

    def __str__(self) -> str:
        return self.text


class InvalidScope(GovernanceError):
    """A scope name or modifier patbot does not know; the message names it."""


def parse_scope(text: str) -> Scope:
    """Read a scope as Databricks reports it, leniently: unknown names kept, unknown modifiers ignored."""
    name, *mods = text.strip().lower().split(":")
    return Scope(name=name, read=READ in mods, restricted_query=RESTRICTED_QUERY in mods)


def validate_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    """Scopes typed by a person: every name must be in the catalogue and every modifier must fit it.

    Raises `InvalidScope` naming the first unknown name or modifier. Duplicates are dropped; the order
    of first appearance is kept.
    """
    out: list[Scope] = []
    for raw in texts:
        text = raw.strip()
        if not text:
            continue
        name, *mods = text.lower().split(":")
        if name not in SCOPE_CATALOGUE:
            raise InvalidScope(
                f"Unknown API scope `{name}`. Known scopes: {', '.join(sorted(SCOPE_CATALOGUE))}."
            )
        for mod in mods:
            if mod not in (READ, RESTRICTED_QUERY):
                raise InvalidScope(
                    f"Unknown scope modifier `{mod}` in `{text}`; use `:read` or `:restricted-query`."
                )
            if mod == RESTRICTED_QUERY and name != SQL:
                raise InvalidScope(f"`:restricted-query` applies only to the `sql` scope, not `{name}`.")
        if len(mods) != len(set(mods)):
            raise InvalidScope(f"Repeated modifier in `{text}`.")
        scope = Scope(name=name, read=READ in mods, restricted_query=RESTRICTED_QUERY in mods)
        if scope not in out:
            out.append(scope)
    if not out:
        raise InvalidScope("No API scope given.")
    return tuple(out)


# ------------------------------------------------------------------------------------------- grants

Grant = Mapping[str, frozenset[Capability]]
"""Capabilities per area name; the key ``all-apis`` stands for every area."""


@lru_cache(maxsize=4096)
def grant_of(texts: tuple[str, ...]) -> Grant:
    """What a list of scope texts allows; no scopes at all means full access, as Databricks applies it."""
    if not texts:
        return {FULL_ACCESS: _ALL}
    grant: dict[str, frozenset[Capability]] = {}
    for text in texts:
        scope = parse_scope(text)
        grant[scope.name] = grant.get(scope.name, frozenset()) | scope.capabilities
    return grant


def _allowed(grant: Grant, name: str) -> frozenset[Capability]:
    return grant.get(name, frozenset()) | (grant.get(FULL_ACCESS, frozenset()) & _full(name))


def covers(granted: Iterable[str | Scope], used: Iterable[str | Scope]) -> bool:
    """Whether `granted` allows everything `used` does (``jobs`` covers ``jobs:read``; nothing but
    ``all-apis`` or no scopes covers ``all-apis``). Empty `granted` is full access; empty `used` is nothing.
    """
    have = grant_of(_texts(granted))
    used_texts = _texts(used)
    if not used_texts:
        return True
    need = grant_of(used_texts)
    return all(caps <= _allowed(have, name) for name, caps in need.items())


def intersect(granted: Iterable[str | Scope], used: Iterable[str | Scope]) -> tuple[Scope, ...]:
    """The part of `used` that `granted` allows, as scopes: never wider than either side."""
    have, need = grant_of(_texts(granted)), grant_of(_texts(used))
    everywhere = have.get(FULL_ACCESS, frozenset()) & need.get(FULL_ACCESS, frozenset())
    out = _as_scopes(FULL_ACCESS, everywhere)
    for name in sorted((set(have) | set(need)) - {FULL_ACCESS}):
        caps = _allowed(have, name) & _allowed(need, name)
        if not caps <= everywhere & _full(name):
            out += _as_scopes(name, caps)
    return tuple(out)


def _as_scopes(name: str, caps: frozenset[Capability]) -> list[Scope]:
    if not caps:
        return []
    if caps >= _full(name):
        return [Scope(name)]
    # Without every capability, the expressible slices are read and read-only queries.
    return [Scope(name, read=Capability.READ in caps, restricted_query=Capability.QUERY in caps)]


def _texts(scopes: Iterable[str | Scope]) -> tuple[str, ...]:
    return tuple(s.text if isinstance(s, Scope) else s for s in scopes)


def is_full_access(texts: Iterable[str | Scope]) -> bool:
    """No scopes at all, or `all-apis` without a modifier among them."""
    grant = grant_of(_texts(texts))
    return grant.get(FULL_ACCESS, frozenset()) >= _ALL
