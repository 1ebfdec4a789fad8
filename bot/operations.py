"""Carrying out an approved request against Databricks, exactly once, and saying what happened."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.approvals import (
    ApprovalRequest,
    ApprovalStore,
    MigratePlan,
    PolicyPlan,
    RequestKind,
    RevokePlan,
    ScopePlan,
    TokenPlan,
)
from bot.databricks import (
    DatabricksError,
    DatabricksNotFound,
    SecretValueLost,
    TokenValueLost,
    WorkspaceGateway,
    WriteInDoubt,
    WriteNotApplied,
)
from bot.errors import GovernanceError
from bot.fleet import Fleet
from bot.governance.models import TokenAccess
from bot.governance.scopes import FULL_ACCESS
from bot.secret_keys import KeyChoice, KeyPair, SecretKeys, choose_key, choose_key_pair, oauth_holder

__all__ = [
    "ActionResult",
    "Operations",
    "SecretKeys",
    "StepFailed",
    "marked_comment",
    "marker_for",
    "scope_list",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the action did: `outcome` is a short word ("revoked", "failed"), `detail` a sentence."""

    outcome: str
    detail: str


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
        plan = request.plan
        if isinstance(plan, RevokePlan):
            return self._revoke(request)
        if isinstance(plan, TokenPlan):
            return (
                self._rotate(request, plan)
                if request.kind == RequestKind.ROTATE
                else self._create(request, plan)
            )
        if isinstance(plan, MigratePlan):
            return self._migrate(request, plan)
        if isinstance(plan, ScopePlan):
            return self._scope(request, plan)
        return self._policy(plan)

    def _gateway(self, host: str) -> WorkspaceGateway:
        return self.fleet.gateway(self.fleet.by_host(host))

    def _revoke(self, request: ApprovalRequest) -> ActionResult:
        gateway = self._gateway(request.workspace)
        short, label = request.subject[:12], gateway.workspace.label
        try:
            note = gateway.revoke(request.subject)
        except DatabricksNotFound:
            return ActionResult("failed", f"token {short} was already gone from {label}")
        except WriteInDoubt as exc:
            return ActionResult("failed", f"whether token {short} was revoked is UNKNOWN: {exc.user_message}")
        except DatabricksError as exc:
            return ActionResult("failed", f"token {short} was NOT revoked: {exc.user_message}")
        return ActionResult("revoked", f"token {short} revoked in {label}{_aside(note)}")

    def _new_token(
        self, request: ApprovalRequest, plan: TokenPlan, comment: str, replacing: str | None
    ) -> tuple[str, str]:
        """Create and store a token; returns (new token id, what was done). Raises with the exact state.

        The value goes to a key holding no live token's value (or to the key of the token it `replaces`);
        the key is claimed for this request while the token is created and stored.
        """
        gateway = self._gateway(request.workspace)
        scope, host = plan.secret_scope, gateway.workspace.host
        choice = choose_key(
            gateway, self.secret_keys, scope, plan.secret_key, replacing=replacing, claim_for=request.id
        )
        try:
            new_id = self._create_and_store(
                NewToken(request.id, plan, comment, rotating=replacing is not None), gateway, choice
            )
            self.secret_keys.remember(new_id, scope, choice.key, host)
        finally:
            self.secret_keys.release(host, scope, choice.key, request.id)
        where = f"secret {scope}/{choice.key}"
        if choice.key != plan.secret_key:
            where += f" (not {plan.secret_key}: {choice.note()})"
        elif plan.secret_key_note:
            where += f" (because {plan.secret_key_note})"
        return new_id, f"new token {new_id[:12]} created and stored in {where}"

    def _create_and_store(self, new: NewToken, gateway: WorkspaceGateway, choice: KeyChoice) -> str:
        plan, marker = new.plan, marker_for(new.request_id)
        try:
            created = gateway.create_obo_token(
                plan.application_id,
                timedelta(seconds=plan.lifetime_seconds),
                new.comment,
                marker,
                TokenAccess(plan.scopes, plan.autoscope),
            )
        except TokenValueLost as exc:
            raise StepFailed(f"{exc.user_message}; {self._undo(gateway, exc.token.token_id)}") from None
        except WriteInDoubt as exc:
            raise StepFailed(
                f"whether a token was created is UNKNOWN ({exc.user_message}); if one exists, its comment "
                f"carries {marker} and its value is lost: revoke it"
            ) from None
        new_id, scope = created.token.token_id, plan.secret_scope
        try:
            note = gateway.put_secret(scope, choice.key, created.value, stamp_before=choice.stamp)
        except WriteInDoubt as exc:
            if (
                new.rotating
            ):  # the key held the old token's value; revoking the new one could leave neither usable
                raise StepFailed(
                    f"new token {new_id[:12]} created, but whether its value reached secret {scope}/{choice.key} "
                    f"is UNKNOWN ({exc.user_message}); check that secret"
                ) from None
            raise StepFailed(
                f"new token {new_id[:12]} created but NOT known to be stored ({exc.user_message}); "
                f"{self._undo(gateway, new_id)}"
            ) from None
        except DatabricksError as exc:
            raise StepFailed(
                f"new token {new_id[:12]} created but NOT stored ({exc.user_message}); {self._undo(gateway, new_id)}"
            ) from None
        finally:
            del created
        if note:
            log.info("secret %s/%s for token %s: %s", scope, choice.key, new_id[:12], note)
        return new_id

    @staticmethod
    def _undo(gateway: WorkspaceGateway, token_id: str) -> str:
        """Revoke a token whose value is lost, and say what became of it."""
        try:
            gateway.revoke(token_id)
        except DatabricksError as exc:
            return (
                f"revoking the unusable token {token_id[:12]} ALSO failed ({exc.user_message}): "
                "revoke it by hand, nobody holds its value"
            )
        return f"token {token_id[:12]} was revoked again because its value could not be stored"

    def _create(self, request: ApprovalRequest, plan: TokenPlan) -> ActionResult:
        try:
            _, done = self._new_token(
                request, plan, marked_comment(plan.comment, marker_for(request.id)), None
            )
        except StepFailed as exc:
            return ActionResult("failed", exc.user_message)
        except DatabricksError as exc:
            return ActionResult("failed", f"no token created: {exc.user_message}")
        return ActionResult(
            "created", f"{done} for {plan.principal or plan.application_id}, lifetime {plan.lifetime}"
        )

    def _rotate(self, request: ApprovalRequest, plan: TokenPlan) -> ActionResult:
        today = datetime.now(UTC).date()
        comment = marked_comment(plan.comment, marker_for(request.id), rotated=today)
        try:
            _, done = self._new_token(request, plan, comment, request.subject)
        except StepFailed as exc:
            return ActionResult("failed", f"{exc.user_message}; old token {request.subject[:12]} untouched")
        except DatabricksError as exc:
            return ActionResult(
                "failed", f"nothing changed: creating the replacement failed ({exc.user_message})"
            )
        gateway = self._gateway(request.workspace)
        try:
            note = gateway.revoke(request.subject)
        except DatabricksError as exc:
            return ActionResult(
                "failed", f"{done}, old token {request.subject[:12]} NOT revoked: {exc.user_message}"
            )
        return ActionResult("rotated", f"{done}; old token {request.subject[:12]} revoked{_aside(note)}")

    def _scope(self, request: ApprovalRequest, plan: ScopePlan) -> ActionResult:
        """One PATCH of the token's scopes; a lost answer is read back, never resent."""
        gateway = self._gateway(request.workspace)
        short, label = request.subject[:12], gateway.workspace.label
        change = f"{scope_list(plan.before)} → {scope_list(plan.after)}"
        try:
            gateway.update_scopes(request.subject, plan.after)
        except DatabricksNotFound:
            return ActionResult("failed", f"token {short} was already gone from {label}")
        except WriteNotApplied as exc:
            return ActionResult("failed", f"the scopes of token {short} were NOT changed: {exc.user_message}")
        except WriteInDoubt as exc:
            return ActionResult(
                "failed",
                f"whether the scopes of token {short} changed ({change}) is UNKNOWN: {exc.user_message}",
            )
        except DatabricksError as exc:
            return ActionResult("failed", f"the scopes of token {short} were NOT changed: {exc.user_message}")
        outcome = "widened" if plan.widening else "narrowed"
        return ActionResult(outcome, f"scopes of token {short} in {label} {outcome}: {change}")

    def _policy(self, plan: PolicyPlan) -> ActionResult:
        days = plan.days
        done, failed = [], []
        for host in plan.hosts:
            try:
                gateway = self._gateway(host)
                note = gateway.set_max_lifetime(days)
                done.append(gateway.workspace.label + _aside(note))
            except GovernanceError as exc:
                failed.append(exc.user_message)
        if not failed:
            return ActionResult(
                "applied",
                f"new tokens now live at most {days} days (maxTokenLifetimeDays) on {', '.join(done)}",
            )
        if done:
            return ActionResult(
                "failed", f"applied on {', '.join(done)} only; NOT applied: {'; '.join(failed)}"
            )
        return ActionResult("failed", f"NOT applied anywhere: {'; '.join(failed)}")

    # ------------------------------------------------------------------- migrate: PATs → OAuth secret

    def _migrate(self, request: ApprovalRequest, plan: MigratePlan) -> ActionResult:
        """One OAuth secret for the principal: its client ID and secret stored, its PATs left alone.

        The planned keys are claimed and checked again; if either now holds a live credential's value,
        nothing is created (the approvers saw those keys).
        """
        gateway = self._gateway(request.workspace)
        scope, host = plan.secret_scope, gateway.workspace.host
        try:
            pair = choose_key_pair(
                gateway,
                self.secret_keys,
                scope,
                plan.secret_key.removesuffix("-secret"),
                claim_for=request.id,
            )
        except DatabricksError as exc:
            return ActionResult("failed", f"nothing created: {exc.user_message}")
        try:
            if (pair.client_id_key, pair.secret_key) != (plan.client_id_key, plan.secret_key):
                return ActionResult(
                    "failed",
                    f"nothing created: secret {scope}/{plan.secret_key} or {plan.client_id_key} now holds "
                    f"another credential ({pair.note() or 'taken'}); ask again",
                )
            secret_id = self._create_secret(gateway, plan, pair)
        except StepFailed as exc:
            return ActionResult("failed", exc.user_message)
        except DatabricksError as exc:
            return ActionResult("failed", f"nothing created: {exc.user_message}")
        finally:
            for key in (pair.client_id_key, pair.secret_key):
                self.secret_keys.release(host, scope, key, request.id)
        holder = oauth_holder(plan.principal_id, secret_id)
        for key in (pair.client_id_key, pair.secret_key):
            self.secret_keys.remember(holder, scope, key, host)
        access = "full access (all-apis)" if plan.scopes == (FULL_ACCESS,) else ", ".join(plan.scopes)
        return ActionResult(
            "migrated",
            f"OAuth secret {secret_id[:12]} created for {plan.principal or plan.application_id} in "
            f"{plan.workspace_label}, lifetime {plan.lifetime}, API scopes {access}; client ID in secret "
            f"{scope}/{pair.client_id_key}, secret in {scope}/{pair.secret_key}; "
            f"{len(plan.pat_ids)} PAT(s) left as they are",
        )

    def _create_secret(self, gateway: WorkspaceGateway, plan: MigratePlan, pair: KeyPair) -> str:
        """Store the client ID, create the secret and store it; returns its ID. Raises with the exact state."""
        scope = plan.secret_scope
        gateway.put_secret(scope, pair.client_id_key, plan.application_id, stamp_before=pair.client_id_stamp)
        lifetime = timedelta(seconds=plan.lifetime_seconds)
        try:
            created = gateway.create_principal_secret(plan.principal_id, lifetime, plan.scopes)
        except SecretValueLost as exc:
            raise StepFailed(
                f"{exc.user_message}; {self._delete_secret(gateway, plan, exc.secret.secret_id)}"
            ) from None
        except WriteInDoubt as exc:
            raise StepFailed(
                f"whether an OAuth secret was created is UNKNOWN ({exc.user_message}); if the principal has a "
                "secret created just now, nobody holds its value: delete it"
            ) from None
        secret_id = created.secret.secret_id
        try:
            gateway.put_secret(scope, pair.secret_key, created.value, stamp_before=pair.secret_stamp)
        except DatabricksError as exc:
            stored = "NOT known to be stored" if isinstance(exc, WriteInDoubt) else "NOT stored"
            raise StepFailed(
                f"OAuth secret {secret_id[:12]} created but {stored} ({exc.user_message}); "
                f"{self._delete_secret(gateway, plan, secret_id)}"
            ) from None
        finally:
            del created
        return secret_id

    @staticmethod
    def _delete_secret(gateway: WorkspaceGateway, plan: MigratePlan, secret_id: str) -> str:
        """Delete an OAuth secret whose value is lost, and say what became of it."""
        try:
            gateway.delete_principal_secret(plan.principal_id, secret_id)
        except DatabricksError as exc:
            return (
                f"deleting the unusable OAuth secret {secret_id[:12]} ALSO failed ({exc.user_message}): "
                "delete it by hand, nobody holds its value"
            )
        return f"OAuth secret {secret_id[:12]} was deleted again because its value could not be stored"


_MARKER_RE = re.compile(r"\s*\[patbot:[^\]\s]*\]")
_ROTATED_RE = re.compile(r"\s*\(rotated \d{4}-\d{2}-\d{2}\)")


def marker_for(request_id: str) -> str:
    """The tag a token created for this request carries in its comment, to be found again."""
    return f"[patbot:{request_id}]"


def marked_comment(comment: str, marker: str, rotated: date | None = None) -> str:
    """`comment` with this request's marker (and rotation date), never piling up earlier ones."""
    base = _MARKER_RE.sub("", comment)
    if rotated is not None:
        base = _ROTATED_RE.sub("", base)
    parts = [base.strip(), f"(rotated {rotated:%Y-%m-%d})" if rotated else "", marker]
    return " ".join(part for part in parts if part)


def scope_list(scopes: tuple[str, ...]) -> str:
    """Scopes as Databricks spells them, comma-separated; none is full access."""
    return ", ".join(scopes) or "full access"


def _aside(note: str) -> str:
    return f" ({note})" if note else ""


@dataclass(frozen=True, slots=True)
class NewToken:
    """One token to create for a request: its plan, the comment it gets, and whether it replaces another."""

    request_id: str
    plan: TokenPlan
    comment: str
    rotating: bool


class StepFailed(GovernanceError):
    """A multi-step action stopped part-way; the message says exactly what was done."""
