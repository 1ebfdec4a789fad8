"""Which secret key holds which token's value, and the choice of a key that holds no live token's value.

No created credential may lose its value: a key that holds the value of a token still alive is never
overwritten by a different credential. Only the rotation of that very token may overwrite it (the old
token is revoked right after). A key whose content patbot does not know (written before patbot kept
track, or by someone else) is treated as holding a live value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError

from bot.databricks import DatabricksError, DatabricksNotFound

if TYPE_CHECKING:
    from bot.databricks import WorkspaceGateway

log = logging.getLogger(__name__)

MAX_KEY_SUFFIX = 99
CLAIM_SECONDS = 600
"""A claim outlives the create + store it protects; it only expires if its holder died mid-way."""


class SecretKeys:
    """Token id → `scope/key` it was stored under, and `host scope/key` → token whose value it holds (Redis)."""

    def __init__(self, client: Redis[Any], prefix: str = "patbot") -> None:
        self._redis = client
        self._key = f"{prefix}:secret-keys"
        self._holders = f"{prefix}:secret-key-holders"
        self._claims = f"{prefix}:secret-key-claim"

    def remember(self, token_id: str, scope: str, key: str, host: str = "") -> None:
        """Best effort: losing this only means a later create or rotation picks a fresh key."""
        try:
            with self._redis.pipeline() as pipe:
                pipe.hset(self._key, token_id, f"{scope}/{key}")
                pipe.hset(self._holders, _slot(host, scope, key), token_id)
                pipe.execute()
        except RedisError:
            log.warning("could not remember the secret key of token %s", token_id[:12])

    def lookup(self, token_id: str) -> str | None:
        """`scope/key` of a token created by patbot, if known."""
        try:
            value = self._redis.hget(self._key, token_id)
        except RedisError:
            return None
        return str(value) if value else None

    def holder(self, host: str, scope: str, key: str) -> str | None:
        """The token whose value patbot last wrote to this key, if known."""
        try:
            value = self._redis.hget(self._holders, _slot(host, scope, key))
        except RedisError:
            return None
        return str(value) if value else None

    def claim(self, host: str, scope: str, key: str, owner: str) -> bool:
        """Reserve a key for one create (so two at once never pick the same key); False when taken."""
        try:
            return bool(
                self._redis.set(f"{self._claims}:{_slot(host, scope, key)}", owner, nx=True, ex=CLAIM_SECONDS)
            )
        except RedisError:
            log.warning("could not reserve secret key %s/%s; going on without the reservation", scope, key)
            return True

    def release(self, host: str, scope: str, key: str, owner: str) -> None:
        """Give a claimed key back (only by its owner)."""
        name = f"{self._claims}:{_slot(host, scope, key)}"
        try:
            if self._redis.get(name) == owner:
                self._redis.delete(name)
        except RedisError:
            log.warning("could not release secret key %s/%s; it frees itself later", scope, key)


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """The key a value will be written to, and the keys passed over (each with why)."""

    key: str
    stamp: int | None
    """The key's `last_updated_timestamp` now (None: absent), to tell later whether a write arrived."""
    skipped: tuple[str, ...] = ()

    def note(self) -> str:
        """Why the key is not the first one planned, or ""."""
        return "; ".join(self.skipped)


def candidates(wanted: str) -> Iterator[str]:
    """`wanted`, then `wanted-2`, `wanted-3`, … (a key may hold at most 128 characters)."""
    yield wanted
    for n in range(2, MAX_KEY_SUFFIX + 1):
        suffix = f"-{n}"
        yield wanted[: 128 - len(suffix)] + suffix


def why_taken(
    gateway: WorkspaceGateway,
    keys: SecretKeys | None,
    scope: str,
    key: str,
    stamps: Mapping[str, int],
    replacing: str | None,
) -> str:
    """Why `key` must not be overwritten ("" when it may be)."""
    if key not in stamps:
        return ""
    holder = keys.holder(gateway.workspace.host, scope, key) if keys is not None else None
    if holder is None and replacing is not None and keys is not None:
        # recorded before patbot tracked holders: the token being replaced was stored here
        holder = replacing if keys.lookup(replacing) == f"{scope}/{key}" else None
    if holder is None:
        return f"{key} already holds a value patbot did not write"
    if holder == replacing or not _alive(gateway, holder):
        return ""
    return f"{key} holds the value of live token {holder[:12]}"


def choose_key(
    gateway: WorkspaceGateway,
    keys: SecretKeys | None,
    scope: str,
    wanted: str,
    *,
    replacing: str | None = None,
    claim_for: str | None = None,
) -> KeyChoice:
    """The first of `wanted`, `wanted-2`, … that holds no live token's value (claimed when `claim_for`)."""
    stamps = gateway.secret_stamps(scope)
    skipped: list[str] = []
    host = gateway.workspace.host
    for key in candidates(wanted):
        if claim_for is not None and keys is not None and not keys.claim(host, scope, key, claim_for):
            skipped.append(f"{key} is being written by another request")
            continue
        why = why_taken(gateway, keys, scope, key, stamps, replacing)
        if not why:
            return KeyChoice(key, stamps.get(key), tuple(skipped))
        skipped.append(why)
        if claim_for is not None and keys is not None:
            keys.release(host, scope, key, claim_for)
    raise DatabricksError(f"no free secret key in {scope} for {wanted} (tried {MAX_KEY_SUFFIX})")


def _alive(gateway: WorkspaceGateway, token_id: str) -> bool:
    """Whether the token (or OAuth secret) exists and has not expired; when unsure, alive."""
    if token_id.startswith(OAUTH_HOLDER_PREFIX):
        return _secret_alive(gateway, token_id)
    try:
        token = gateway.get_token(token_id)
    except DatabricksNotFound:
        return False
    except DatabricksError:
        return True
    return token.expires is None or token.expires > datetime.now(UTC)


def _slot(host: str, scope: str, key: str) -> str:
    return f"{host} {scope}/{key}"


# ------------------------------------------------------------------------------ OAuth secrets (migrate)

OAUTH_HOLDER_PREFIX = "oauth:"
MAX_PAIR_STEM = 100
"""A pair's keys add `-client-id` to the stem (and a suffix may follow): they stay within 128 characters."""


def oauth_holder(principal_id: str, secret_id: str) -> str:
    """How an OAuth secret is named as the holder of a key (beside token IDs)."""
    return f"{OAUTH_HOLDER_PREFIX}{principal_id}:{secret_id}"


def _secret_alive(gateway: WorkspaceGateway, holder: str) -> bool:
    principal_id, _, secret_id = holder.removeprefix(OAUTH_HOLDER_PREFIX).partition(":")
    try:
        listed = gateway.list_principal_secrets(principal_id)
    except DatabricksNotFound:
        return False
    except DatabricksError:
        return True
    now = datetime.now(UTC)
    return any(s.secret_id == secret_id and s.live(now) for s in listed)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """The keys an OAuth client ID and secret go to, with their stamps now (None: absent)."""

    client_id_key: str
    secret_key: str
    client_id_stamp: int | None
    secret_stamp: int | None
    skipped: tuple[str, ...] = ()

    def note(self) -> str:
        """Why the pair is not the first one planned, or ""."""
        return "; ".join(self.skipped)


def pair_keys(stem: str) -> tuple[str, str]:
    """`{stem}-client-id` and `{stem}-secret`."""
    return f"{stem}-client-id", f"{stem}-secret"


def choose_key_pair(
    gateway: WorkspaceGateway,
    keys: SecretKeys | None,
    scope: str,
    stem: str,
    *,
    claim_for: str | None = None,
) -> KeyPair:
    """The first of `stem`, `stem-2`, … whose two keys hold no live credential's value (claimed when asked)."""
    stamps = gateway.secret_stamps(scope)
    host = gateway.workspace.host
    skipped: list[str] = []
    for candidate in candidates(stem[:MAX_PAIR_STEM]):
        pair = pair_keys(candidate)
        claimed: list[str] = []
        if claim_for is not None and keys is not None:
            for key in pair:
                if not keys.claim(host, scope, key, claim_for):
                    break
                claimed.append(key)
        if len(claimed) < len(pair) and claim_for is not None and keys is not None:
            skipped.append(f"{candidate} is being written by another request")
            for key in claimed:
                keys.release(host, scope, key, claim_for)
            continue
        why = next((w for w in (why_taken(gateway, keys, scope, k, stamps, None) for k in pair) if w), "")
        if not why:
            return KeyPair(pair[0], pair[1], stamps.get(pair[0]), stamps.get(pair[1]), tuple(skipped))
        skipped.append(why)
        for key in claimed:
            if keys is not None and claim_for is not None:
                keys.release(host, scope, key, claim_for)
    raise DatabricksError(f"no free pair of secret keys in {scope} for {stem} (tried {MAX_KEY_SUFFIX})")
