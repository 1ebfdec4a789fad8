"""The one composition root: every long-lived part is built here, once, on first use.

In the manner of Databricks Labs UCX's application context: one object with a cached property per part,
each built from the settings and the parts it needs; `replace(**parts)` gives a copy with some parts
swapped (tests, the demo, benchmarks). Every entry point (`serve`, `demo`, `remind`, `summary`, `audit`,
`log`) builds an `Application` and takes what it needs from it; nothing else composes objects.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.settings import Settings

if TYPE_CHECKING:  # the Slack and Databricks parts are imported only by the commands that build them
    from redis import Redis
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.approvals import ApprovalStore
    from bot.fleet import Fleet
    from bot.flows.deps import FlowDeps
    from bot.governance.models import Policy
    from bot.operations import Operations
    from bot.secret_keys import SecretKeys
    from bot.services import Services
    from bot.weekly.chat import Chat
    from handlers.context import SlackContext
    from handlers.metrics import Metrics
    from handlers.notifier import SlackNotifier
    from handlers.people import SlackDirectory


class Application:
    """Every long-lived part of patbot, built lazily from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def replace(self, **parts: Any) -> Application:
        """A copy with some parts given instead of built (any cached property's name)."""
        clone = copy.copy(self)
        clone.__dict__.update(parts)
        return clone

    # -- the core

    @cached_property
    def clock(self) -> Callable[[], datetime]:
        from bot.services import utc_now

        return utc_now

    @cached_property
    def fleet(self) -> Fleet:
        from bot.services import build_fleet

        return build_fleet(self.settings)

    @cached_property
    def policy(self) -> Policy:
        from bot.services import policy_from

        return policy_from(self.settings)

    @cached_property
    def _redis_parts(self) -> tuple[Redis[Any], bool]:
        from bot.approvals import connect_redis

        return connect_redis(self.settings.redis_url)

    @cached_property
    def redis(self) -> Redis[Any]:
        return self._redis_parts[0]

    @cached_property
    def embedded_store(self) -> bool:
        """True when `REDIS_URL` is unset and the store lives in this process only."""
        return self._redis_parts[1]

    @cached_property
    def store(self) -> ApprovalStore:
        from bot.approvals import ApprovalStore

        return ApprovalStore(
            self.redis, ttl=timedelta(hours=self.settings.approval_ttl_hours), clock=self.clock
        )

    @cached_property
    def services(self) -> Services:
        from bot.services import Services

        return Services(
            settings=self.settings,
            fleet=self.fleet,
            policy=self.policy,
            clock=self.clock,
            redis=self.redis,
            approvals=self.store,
            embedded_store=self.embedded_store,
        )

    @cached_property
    def secret_keys(self) -> SecretKeys:
        from bot.secret_keys import SecretKeys

        return SecretKeys(self.redis)

    @cached_property
    def executor(self) -> Operations:
        from bot.operations import Operations

        return Operations(self.fleet, self.store, self.secret_keys)

    # -- the Slack surface

    @cached_property
    def slack_client(self) -> WebClient:
        from handlers.app import slack_client

        return slack_client(self.settings)

    @cached_property
    def metrics(self) -> Metrics:
        from bot.flows.health import request_counts
        from handlers.metrics import Metrics

        return Metrics(lambda: request_counts(self.store))

    @cached_property
    def people(self) -> SlackDirectory:
        from handlers.people import SlackDirectory

        return SlackDirectory(self.slack_client, self.settings.approvers)

    @cached_property
    def notifier(self) -> SlackNotifier:
        from handlers.notifier import SlackNotifier

        return SlackNotifier(self.slack_client, self.settings.admin_channel or "", self.people, self.metrics)

    @cached_property
    def deps(self) -> FlowDeps:
        from bot.flows.deps import FlowDeps

        return FlowDeps(
            settings=self.settings,
            fleet=self.fleet,
            policy=self.policy,
            store=self.store,
            executor=self.executor,
            people=self.people,
            notifier=self.notifier,
            clock=self.clock,
        )

    @cached_property
    def slack_context(self) -> SlackContext:
        from handlers.context import SlackContext

        return SlackContext(services=self.services, deps=self.deps, metrics=self.metrics)

    @cached_property
    def slack_app(self) -> App:
        """The Bolt app with every listener registered (Bolt checks the bot token with `auth.test`)."""
        from handlers.app import create_app

        return create_app(self.settings, self.slack_client, self.slack_context)

    @cached_property
    def weekly_job(self) -> Callable[[], bool]:
        """The scheduled weekly run: one audit, this week's reminders, then the summary."""
        from bot.weekly import weekly_job
        from handlers.weekly_blocks import reminder_message, summary_message

        return weekly_job(
            self.services, self.weekly_chat, render_dm=reminder_message, render_summary=summary_message
        )

    @cached_property
    def weekly_chat(self) -> Chat:
        """The weekly job's chat port over Slack (without retry handlers: the job paces itself)."""
        from handlers.weekly_chat import SlackChat

        return SlackChat(self.weekly_client)

    @cached_property
    def weekly_client(self) -> WebClient:
        """A `WebClient` for `PATBOT_SLACK_API_URL`."""
        from slack_sdk import WebClient

        settings = self.settings
        settings.require("slack_bot_token")
        assert settings.slack_bot_token is not None
        return WebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            timeout=settings.slack_timeout_seconds,
        )
