"""The Slack simulator in a real browser: Debian's Chromium driven by Playwright for Python.

Never `playwright install` (it downloads a browser): the system Chromium is launched by path
(`PATBOT_CHROMIUM`, default /usr/bin/chromium). Skips, saying why, where either is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.demo_data import PERSONAS
from entrypoints.demo import Demo, start_demo

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install playwright; never `playwright install`)",
)
expect = sync_api.expect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALICE, BOB, GRACE, HEIDI, ZOE = (p.user_id for p in PERSONAS[:5])
# The README's picture: refreshed only on request (PATBOT_SCREENSHOT=docs/simulator.png), so that a test run
# never changes the working tree.
SCREENSHOT_ENV = "PATBOT_SCREENSHOT"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


def chromium_path() -> str:
    wanted = os.environ.get("PATBOT_CHROMIUM", "/usr/bin/chromium")
    found = shutil.which(wanted)
    if found is None:
        pytest.skip(f"Chromium not found at {wanted} (apt-get install chromium; .ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def demo() -> Iterator[Demo]:
    running = start_demo(port=0)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def page(browser: Any, demo: Demo) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    tab.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    tab.goto(demo.url)
    tab.wait_for_selector("body[data-ready='1']")
    yield tab
    context.close()
    assert not problems, problems


def switch_to(page: Any, user_id: str, view: str = "messages") -> None:
    page.click(f".persona[data-user='{user_id}']")
    page.wait_for_selector(f"body[data-user='{user_id}']")
    page.click(f".nav-item[data-view='{view}']")
    page.wait_for_selector(f"body[data-view='{view}']")


def run(page: Any, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")
    expect(page.locator("#composer-input")).to_have_value("")


def token_of(demo: Demo, owner: str, workspace: str = "prod") -> str:
    with demo.databricks.lock:
        return next(
            t.token_id for t in demo.databricks.workspace(workspace).tokens if t.created_by_username == owner
        )


def test_revoke_requested_approved_and_gone(page: Any, demo: Demo, tmp_path: Path) -> None:
    token_id = token_of(demo, "alice@example.com")
    short = token_id[:12]

    switch_to(page, ALICE)
    run(page, "/pat audit")
    audit = page.locator(".msg.ephemeral").last
    expect(audit).to_contain_text("Your Databricks tokens")
    expect(audit).to_contain_text(short)
    expect(audit).to_contain_text("Only visible to you")

    switch_to(page, BOB)
    expect(page.locator(".msg.ephemeral")).to_have_count(0)
    run(page, f"/pat revoke {short} left the team")
    expect(page.locator(".msg.ephemeral").last).to_contain_text("sent to the approvers")

    switch_to(page, GRACE, "admin")
    request = page.locator(".msg[data-kind='message']", has_text=short)
    expect(request).to_contain_text("left the team")
    expect(request).to_contain_text("@bob")
    request.get_by_role("button", name="Approve").click()
    expect(request).to_contain_text("Approved by @grace")
    expect(request).to_contain_text("(edited)")
    expect(request.get_by_role("button")).to_have_count(0)
    assert demo.databricks.workspace("prod").token(token_id) is None

    run(page, "/pat audit all")
    expect(page.locator(".msg.ephemeral").last).to_contain_text("Token audit: all workspaces")
    page.locator(".msg[data-kind='message']", has_text=short).scroll_into_view_if_needed()
    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "simulator.png")
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000

    switch_to(page, ALICE)
    expect(page.locator(".msg[data-kind='message']").last).to_contain_text(f"your token {short}")
    run(page, "/pat audit")
    expect(page.locator(".msg.ephemeral")).to_have_count(2)
    latest = page.locator(".msg.ephemeral").last
    expect(latest).to_contain_text("Your Databricks tokens")
    expect(latest).not_to_contain_text(short)


def test_home_tab_modal_and_submit(page: Any, demo: Demo) -> None:
    switch_to(page, ALICE, "home")
    first = page.locator(".home .bk-section").filter(has=page.get_by_role("button", name="Revoke")).first
    short = first.locator("code").first.inner_text()
    first.get_by_role("button", name="Revoke").click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("You own this token")
    expect(modal).to_contain_text(short)
    page.click("#modal-submit")
    expect(modal).to_contain_text("Revoked")
    # A finished modal only informs: Slack replaced the view, so no "Revoke now" is left to click.
    expect(page.locator("#modal-submit")).to_be_hidden()
    expect(page.locator("#modal-close")).to_have_text("Close")
    expect(modal).not_to_contain_text("Approved by")
    page.click("#modal-close")
    expect(modal).to_be_hidden()
    assert not any(
        t.token_id.startswith(short)
        for n in demo.databricks.names
        for t in demo.databricks.workspace(n).tokens
    )
    switch_to(page, ALICE, "messages")
    switch_to(page, ALICE, "home")
    expect(page.locator(".home")).not_to_contain_text(short)


def test_block_kit_rendering_and_escaping(page: Any, demo: Demo) -> None:
    nasty = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    with demo.databricks.lock:
        token = demo.databricks.workspace("prod").tokens[0]
        token.comment = nasty
        short = token.token_id[:12]
    channel = demo.simulator.dm_of(ALICE)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Header <b>plain</b> :key:"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*bold* _italic_ `code` ~gone~ <@U01ALICE00> <!date^1700000000^{date}|Nov 14> "
                "&lt;b&gt;x&amp;y <https://example.com/docs|the docs> <javascript:alert(1)|evil link>",
            },
            "fields": [
                {"type": "mrkdwn", "text": "*Field one*"},
                {"type": "plain_text", "text": "Field two"},
            ],
        },
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "context _line_"}]},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "demo_confirm",
                    "text": {"type": "plain_text", "text": "Dangerous"},
                    "style": "danger",
                    "value": "1",
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Really?"},
                        "text": {"type": "mrkdwn", "text": "This is *final*."},
                        "confirm": {"type": "plain_text", "text": "Do it"},
                        "deny": {"type": "plain_text", "text": "Keep it"},
                    },
                },
                {
                    "type": "button",
                    "action_id": "b2",
                    "text": {"type": "plain_text", "text": "Go"},
                    "style": "primary",
                },
            ],
        },
    ]
    from slack_sdk import WebClient

    WebClient(token=demo.slack.bot_token, base_url=demo.slack.api_url).chat_postMessage(
        channel=channel, blocks=blocks, text="fallback"
    )
    switch_to(page, ALICE)
    message = page.locator(".msg[data-kind='message']").last
    expect(message.locator(".bk-header")).to_have_text("Header <b>plain</b> 🔑")
    text = message.locator(".bk-text").first
    expect(text.locator("b").first).to_have_text("bold")
    expect(text.locator("i").first).to_have_text("italic")
    expect(text.locator("code")).to_have_text("code")
    expect(text.locator("s")).to_have_text("gone")
    expect(text.locator(".mention")).to_have_text("@alice")
    expect(text.locator(".date")).to_have_text("Nov 14")
    expect(text).to_contain_text("<b>x&y")
    expect(text.locator("a")).to_have_count(1)
    assert text.locator("a").get_attribute("href") == "https://example.com/docs"
    expect(text).to_contain_text("evil link")
    expect(message.locator(".bk-fields > *")).to_have_count(2)
    expect(message.locator("hr.bk-divider")).to_have_count(1)
    expect(message.locator(".bk-context")).to_contain_text("context line")
    expect(message.locator("button.bk-button.danger")).to_have_text("Dangerous")
    expect(message.locator("button.bk-button.primary")).to_have_text("Go")

    message.get_by_role("button", name="Dangerous").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Really?")
    expect(dialog.locator("b")).to_have_text("final")
    calls = len(demo.slack.calls())
    page.click("#confirm-deny")
    expect(dialog).to_be_hidden()
    assert len(demo.slack.calls()) == calls

    run(page, "/pat audit")
    audit = page.locator(".msg.ephemeral").last
    expect(audit).to_contain_text(short)
    expect(audit).to_contain_text(nasty)
    assert page.locator("#timeline img, #timeline script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_weekly_job_and_file_downloads(page: Any, demo: Demo) -> None:
    switch_to(page, GRACE, "admin")
    control = page.locator("#weekly-run")
    if control.is_disabled():
        pytest.skip(page.locator("#weekly-note").inner_text() or "the weekly job is not available")
    control.click()
    expect(page.locator("#weekly-note")).to_contain_text("reminder DM", timeout=60_000)
    csv = page.locator("a.file", has_text="tokens")
    expect(csv.first).to_be_visible()
    href = csv.first.get_attribute("href")
    assert href and href.startswith("/files/")
    response = page.request.get(demo.slack.base_url + href)
    assert response.ok and response.headers["content-type"].startswith("text/csv")
    assert b"token" in response.body().lower()

    switch_to(page, ALICE)
    reminder = page.locator(".msg[data-kind='message']", has_text="clean up")
    expect(reminder).to_have_count(1)
    expect(reminder.get_by_role("button", name="Revoke").first).to_be_visible()
    assert json.loads(page.evaluate("JSON.stringify(document.body.dataset)"))["user"] == ALICE


def test_reload_drops_an_open_modal(page: Any, demo: Demo) -> None:
    """Reloading Slack's client closes its modals; the simulator page does the same."""
    switch_to(page, ALICE, "home")
    first = page.locator(".home .bk-section").filter(has=page.get_by_role("button", name="Revoke")).first
    first.get_by_role("button", name="Revoke").click()
    modal = page.locator("#modal")
    expect(modal).to_contain_text("You own this token")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("body")).to_have_attribute("data-user", ALICE)
    expect(page.locator("#modal-backdrop")).to_be_hidden()
    page.wait_for_timeout(1500)  # a few polls: the closed modal stays closed
    expect(page.locator("#modal-backdrop")).to_be_hidden()


def test_a_reason_is_shown_as_typed(page: Any, demo: Demo) -> None:
    short = token_of(demo, "alice@example.com", "staging")[:12]
    switch_to(page, BOB)
    run(page, f"/pat revoke {short} *urgent* &amp; <soon> :x:")
    expect(page.locator(".msg.ephemeral").last).to_contain_text("sent to the approvers")
    switch_to(page, GRACE, "admin")
    request = page.locator(".msg[data-kind='message']", has_text=short)
    # On its own line, as typed: no bold, no entity decoding, no emoji.
    expect(request.locator(".plain", has_text="Reason:")).to_contain_text(
        "\nReason: *urgent* &amp; <soon> :x:"
    )
    expect(request.locator("b", has_text="urgent")).to_have_count(0)
