"""`create_app(settings, client, ctx)`: the Bolt app, built on demand (no module-level app or clients)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.errors import ConfigError
from bot.settings import Settings
from handlers import register
from handlers.context import SlackContext

# Few lazy workers: each competes with the acks for the GIL, and concurrent audits share their
# Databricks reads (see bot.read_cache), so more threads would not answer sooner.
LAZY_WORKERS = 8


def slack_client(settings: Settings) -> WebClient:
    """A `WebClient` for `PATBOT_SLACK_API_URL` that waits out 429s (never used on the ack path)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = WebClient(token=token, base_url=settings.slack_api_url, timeout=settings.slack_timeout_seconds)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=5))
    return client


def create_app(settings: Settings, client: WebClient, ctx: SlackContext) -> App:
    """The Bolt app on `client` with every listener registered; a refused token stops start-up."""
    settings.require("slack_bot_token", "slack_signing_secret")
    try:
        app = _bolt_app(settings, client)
    except BoltError as exc:  # Bolt checks the bot token with auth.test at start-up
        raise ConfigError(f"SLACK_BOT_TOKEN: Slack refused it ({_slack_error(exc)})") from None
    except (SlackApiError, OSError) as exc:
        raise ConfigError(
            f"PATBOT_SLACK_API_URL: cannot reach Slack at {settings.slack_api_url} ({type(exc).__name__})"
        ) from None
    register(app, ctx)
    return app


def _bolt_app(settings: Settings, client: WebClient) -> App:
    assert settings.slack_signing_secret is not None
    # Acks run on the request thread (process_before_response) so they never queue behind slow work;
    # every slow listener is lazy and runs on this executor after the HTTP response.
    return App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=LAZY_WORKERS, thread_name_prefix="patbot-lazy"),
        raise_error_for_unhandled_request=False,
    )


def _slack_error(exc: Exception) -> str:
    found = re.search(r"'error': '([a-z_]+)'", str(exc))
    return found.group(1) if found else "auth.test failed"
