"""Carrying out an approved request against Databricks, exactly once, and saying what happened."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from bot.approvals import ApprovalRequest, ApprovalStore, RequestKind
from bot.databricks import DatabricksError, DatabricksNotFound, WorkspaceGateway
from bot.errors import GovernanceError
from bot.fleet import Fleet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the action did: `outcome` is a short word ("revoked", "failed"), `detail` a sentence."""

    outcome: str
    detail: str

    @property
    def ok(self) -> bool:
        """Whether the action succeeded."""
        return self.outcome != "failed"


class SecretKeys:
    """Which secret `scope/key` holds the value of a token patbot created (for rotation)."""

    def __init__(self, client: Redis[Any], prefix: str = "patbot") -> None:
        self._redis = client
        self._key = f"{prefix}:secret-keys"

    def remember(self, token_id: str, scope: str, key: str) -> None:
        """Best effort: losing this only means a rotation names the key after the principal."""
        try:
            self._redis.hset(self._key, token_id, f"{scope}/{key}")
        except RedisError:
            log.warning("could not remember the secret key of token %s", token_id[:12])

    def lookup(self, token_id: str) -> str | None:
        """`scope/key` of a token created by patbot, if known."""
        try:
            value = self._redis.hget(self._key, token_id)
        except RedisError:
            return None
        return str(value) if value else None


class Operations:
    """Executes requests that were claimed with `ApprovalStore.decide(approved)`; never called twice."""

    def __init__(self, fleet: Fleet, store: ApprovalStore, secret_keys: SecretKeys) -> None:
        self.fleet = fleet
        self.store = store
        self.secret_keys = secret_keys

    def execute(self, request: ApprovalRequest) -> ApprovalRequest:
        """Act on a request this caller won, then record the outcome (first write wins)."""
        try:
            result = self._act(request)
        except GovernanceError as exc:
            result = ActionResult("failed", exc.user_message)
        except Exception as exc:  # the outcome must be recorded whatever happens
            log.exception("unexpected failure executing request %s", request.id)
            result = ActionResult("failed", f"unexpected error ({type(exc).__name__}); check the logs")
        return self.store.record_outcome(request.id, result.outcome, result.detail)

    def _act(self, request: ApprovalRequest) -> ActionResult:
        if request.kind == RequestKind.REVOKE:
            return self._revoke(request)
        if request.kind == RequestKind.CREATE:
            return self._create(request)
        if request.kind == RequestKind.ROTATE:
            return self._rotate(request)
        if request.kind == RequestKind.POLICY:
            return self._policy(request)
        return ActionResult("failed", f"unknown request kind {request.kind}")

    def _gateway(self, host: str) -> WorkspaceGateway:
        return self.fleet.gateway(self.fleet.by_host(host))

    def _revoke(self, request: ApprovalRequest) -> ActionResult:
        gateway = self._gateway(request.workspace)
        short, label = request.subject[:12], gateway.workspace.label
        try:
            gateway.revoke(request.subject)
        except DatabricksNotFound:
            return ActionResult("failed", f"token {short} was already gone from {label}")
        except DatabricksError as exc:
            return ActionResult("failed", f"token {short} was NOT revoked: {exc.user_message}")
        return ActionResult("revoked", f"token {short} revoked in {label}")

    def _new_token(self, request: ApprovalRequest, comment: str) -> tuple[str, str]:
        """Create and store a token; returns (new token id, what was done). Raises with the exact state."""
        p = request.params
        gateway = self._gateway(request.workspace)
        scope, key = p["secret_scope"], p["secret_key"]
        created = gateway.create_obo_token(
            p["application_id"], timedelta(seconds=int(p["lifetime_seconds"])), comment
        )
        new_id = created.token.token_id
        try:
            gateway.put_secret(scope, key, created.value)
        except DatabricksError as exc:
            undo = "the new token was revoked again, since nobody could use it"
            try:
                gateway.revoke(new_id)
            except DatabricksError as revoke_exc:
                undo = f"revoking the unusable new token {new_id[:12]} ALSO failed: {revoke_exc.user_message}"
            raise StepFailed(
                f"new token {new_id[:12]} created but NOT stored ({exc.user_message}); {undo}"
            ) from None
        finally:
            del created
        self.secret_keys.remember(new_id, scope, key)
        return new_id, f"new token {new_id[:12]} stored in secret {scope}/{key}"

    def _create(self, request: ApprovalRequest) -> ActionResult:
        p = request.params
        try:
            _, done = self._new_token(request, p.get("comment", ""))
        except StepFailed as exc:
            return ActionResult("failed", exc.user_message)
        except DatabricksError as exc:
            return ActionResult("failed", f"no token created: {exc.user_message}")
        return ActionResult(
            "created", f"{done} for {p.get('principal', p['application_id'])}, lifetime {p['lifetime']}"
        )

    def _rotate(self, request: ApprovalRequest) -> ActionResult:
        p = request.params
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        comment = f"{p.get('comment', '')} (rotated {stamp})".strip()
        try:
            _, done = self._new_token(request, comment)
        except StepFailed as exc:
            return ActionResult("failed", f"{exc.user_message}; old token {request.subject[:12]} untouched")
        except DatabricksError as exc:
            return ActionResult(
                "failed", f"nothing changed: creating the replacement failed ({exc.user_message})"
            )
        gateway = self._gateway(request.workspace)
        try:
            gateway.revoke(request.subject)
        except DatabricksError as exc:
            return ActionResult(
                "failed", f"{done}, old token {request.subject[:12]} NOT revoked: {exc.user_message}"
            )
        return ActionResult("rotated", f"{done}; old token {request.subject[:12]} revoked")

    def _policy(self, request: ApprovalRequest) -> ActionResult:
        days = int(request.params["days"])
        done, failed = [], []
        for host in request.params["hosts"].split(","):
            try:
                gateway = self._gateway(host)
                gateway.set_max_lifetime(days)
                done.append(gateway.workspace.label)
            except GovernanceError as exc:
                failed.append(exc.user_message)
        if not failed:
            return ActionResult("applied", f"maxTokenLifetimeDays = {days} on {', '.join(done)}")
        if done:
            return ActionResult(
                "failed", f"applied on {', '.join(done)} only; NOT applied: {'; '.join(failed)}"
            )
        return ActionResult("failed", f"NOT applied anywhere: {'; '.join(failed)}")


class StepFailed(GovernanceError):
    """A multi-step action stopped part-way; the message says exactly what was done."""
