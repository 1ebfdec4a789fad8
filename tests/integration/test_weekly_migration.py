"""The weekly summary's view of service principals moving to OAuth: counts, change since last week, and
the PATs proposed for revocation. Databricks and Slack emulators, real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from slack_sdk import WebClient

from bot.sandbox.databricks_emulator import DatabricksEmulator, EmulatedSpSecret, demo_fleet
from bot.sandbox.slack_emulator import SlackEmulator
from bot.services import Services, policy_from
from bot.settings import Settings
from bot.weekly import SummaryOptions, summary
from handlers.weekly_blocks import summary_message
from handlers.weekly_chat import SlackChat
from tests.fixtures.emulators import emulator_fleet

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
ADMIN = "CADMIN0001"
BOT_TOKEN = "xoxb-test"


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
def databricks_now() -> Iterator[DatabricksEmulator]:
    with DatabricksEmulator(demo_fleet(NOW)) as emulator:
        yield emulator


@pytest.fixture
def slack_fast() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=BOT_TOKEN, time_scale=50.0) as emulator:
        yield emulator


def services_for(slack: SlackEmulator, databricks: DatabricksEmulator, redis_url: str) -> Services:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_api_url": slack.api_url,
        "admin_channel": ADMIN,
        "approvers": ["UAPPROVER1"],
        "databricks_host": "https://placeholder.invalid",
        "scheduler": "off",
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    return Services(
        settings=settings,
        fleet=emulator_fleet(databricks, read_ttl=0),
        policy=policy_from(settings),
        clock=lambda: NOW,
        redis=redis.Redis.from_url(redis_url, decode_responses=True),
    )


def migrate(
    databricks: DatabricksEmulator, ws: str, sp: str, age_days: int, pats_idle_days: int | None
) -> None:
    """Give `sp` an OAuth secret made `age_days` ago; with `pats_idle_days`, its PATs last used that long ago."""
    with databricks.lock:
        state = databricks.workspace(ws)
        principal = next(p for p in state.principals if p.display_name == sp)
        created = NOW - timedelta(days=age_days)
        state.sp_secrets.append(
            EmulatedSpSecret(f"{ws}-{sp}", principal.id, ms(created), ms(created + timedelta(days=90)))
        )
        if pats_idle_days is not None:
            day = (NOW - timedelta(days=pats_idle_days)).replace(hour=0, minute=0, second=0, microsecond=0)
            for token in state.tokens:
                if token.owner_id == principal.id:
                    token.last_used_day = ms(day)


def summary_text(slack: SlackEmulator) -> str:
    post = [m for m in slack.messages_to(ADMIN) if m.blocks][-1]
    return "\n".join(str(b.get("text", {}).get("text", "")) for b in post.blocks if "text" in b)


def test_summary_counts_states_with_weekly_change_and_proposes_revocations(
    slack_fast: SlackEmulator, databricks_now: DatabricksEmulator, redis_url: str
) -> None:
    services = services_for(slack_fast, databricks_now, redis_url)
    client = SlackChat(WebClient(token=BOT_TOKEN, base_url=slack_fast.api_url))
    first = summary(
        services,
        client,
        summary_message,
        SummaryOptions(now=NOW - timedelta(days=7), sleep=slack_fast.sleep, chart=False),
    )
    assert first.posted
    assert "PATs only: *6*" in summary_text(slack_fast), "two principals in three workspaces, none migrated"

    migrate(databricks_now, "prod", "ml-serving", 3, None)  # its PATs were used today: still in use
    migrate(databricks_now, "analytics", "ml-serving", 45, 60)  # unused for 45 days since: propose
    result = summary(services, client, summary_message, SummaryOptions(sleep=slack_fast.sleep, chart=False))
    assert result.posted and result.summary.migration is not None
    text = summary_text(slack_fast)
    assert "PATs only: *4* (-2)" in text
    assert "migrated, PATs still used: *1* (+1)" in text
    assert "migrated, PATs unused since: *1* (+1)" in text
    assert "PAT-free: *0* (±0)" in text
    assert "Proposed: revoke these PATs" in text
    proposal = next(line for line in text.splitlines() if line.startswith("• *ml-serving* in analytics"))
    with databricks_now.lock:
        ml = next(
            p for p in databricks_now.workspace("analytics").principals if p.display_name == "ml-serving"
        )
        pats = [t.token_id[:12] for t in databricks_now.workspace("analytics").tokens if t.owner_id == ml.id]
    assert pats and all(f"`{p}`" in proposal for p in pats)
    assert "in prod" not in text.split("Proposed")[1], "a principal whose PATs are still used is not proposed"
