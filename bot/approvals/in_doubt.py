"""Requests left in doubt by a crash: what is known to have been done, what is not, and telling approvers.

A request is in doubt when it was approved (claimed) but no outcome was recorded: the process acting on
it stopped before Databricks' answer was written down. patbot never retries it by itself; a human checks
Databricks. This module says, per kind, exactly what to check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.approvals.errors import ApprovalError
from bot.approvals.models import ApprovalRequest, RequestKind
from bot.approvals.plans import MigratePlan, RevokePlan, ScopePlan, TokenPlan
from bot.approvals.store import ApprovalStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InDoubt:
    """One request whose outcome is unknown."""

    request: ApprovalRequest
    done: str  # what is recorded as having happened
    not_known: str  # what may or may not have happened, and how to find out

    @property
    def text(self) -> str:
        """Both halves as one sentence pair, for a log line or a message."""
        return f"{self.done}. Not known: {self.not_known}."


def in_doubt_report(request: ApprovalRequest) -> InDoubt:
    """What was and was not done for an approved request without an outcome."""
    when = request.decided_at.strftime("%Y-%m-%d %H:%M UTC") if request.decided_at else "at an unknown time"
    done = (
        f"Approved by {request.decided_by or 'unknown'} {when}; patbot stopped before recording the outcome"
    )
    plan = request.plan
    short = request.subject[:12]
    if isinstance(plan, RevokePlan):
        workspace = plan.workspace_label or request.workspace
        not_known = (
            f"whether token {short} in {workspace} was revoked; check `patbot audit --workspace "
            f"{request.workspace}` and revoke it again if it is still listed"
        )
    elif isinstance(plan, TokenPlan):
        workspace = plan.workspace_label or request.workspace
        secret = f"{plan.secret_scope}/{plan.secret_key}"
        principal = plan.principal or plan.application_id
        if request.kind == RequestKind.ROTATE:
            not_known = (
                f"whether the replacement of token {short} ({principal}, {workspace}) was created and stored "
                f"in secret {secret}, and whether the old token was revoked; check both before rotating again"
            )
        else:
            not_known = (
                f"whether a token for {principal} was created in {workspace} and its value stored in secret "
                f"{secret}; check the principal's tokens and the secret before creating another"
            )
    elif isinstance(plan, MigratePlan):
        not_known = (
            f"whether an OAuth secret for {plan.principal or plan.application_id} was created in "
            f"{plan.workspace_label or request.workspace} and stored in secret {plan.secret_scope}/"
            f"{plan.secret_key}; check the principal's OAuth secrets and that secret before migrating again"
        )
    elif isinstance(plan, ScopePlan):
        workspace = plan.workspace_label or request.workspace
        after = ",".join(plan.after)
        not_known = (
            f"whether the scopes of token {short} in {workspace} were changed to {after}; check its scopes "
            "with `patbot audit --format json` before asking again"
        )
    else:
        not_known = (
            f"whether maxTokenLifetimeDays = {plan.days} was applied on "
            f"{plan.labels or ', '.join(plan.hosts) or request.workspace}; check with `/pat policy`"
        )
    return InDoubt(request=request, done=done, not_known=not_known)


def in_doubt_requests(store: ApprovalStore) -> list[InDoubt]:
    """Every request in doubt, oldest claim first (includes any being acted on right now)."""
    return [in_doubt_report(r) for r in store.in_doubt()]


def announce_in_doubt(
    store: ApprovalStore,
    show_in_doubt: Callable[[InDoubt], None],
    show_outcome: Callable[[ApprovalRequest], None],
) -> list[InDoubt]:
    """Show approvers every request in doubt (on start of ``serve``); never retries one.

    Another replica may be acting on a request right now: after showing it as in doubt, the request is
    read again, and if its outcome arrived meanwhile the outcome is shown instead, so the last word is
    always the true one. Failures to show one request are logged and do not stop the others.
    """
    shown = []
    for item in in_doubt_requests(store):
        try:
            show_in_doubt(item)
            current = store.get(item.request.id)
            if not current.in_doubt:
                show_outcome(current)
                continue
        except (ApprovalError, OSError) as exc:
            log.warning("could not show request %s as in doubt: %s", item.request.id, exc)
            continue
        except Exception:
            log.exception("could not show request %s as in doubt", item.request.id)
            continue
        log.warning("request %s is in doubt: %s", item.request.id, item.text)
        shown.append(item)
    return shown
