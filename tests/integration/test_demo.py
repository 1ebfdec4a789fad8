"""`patbot demo` without a browser: start_demo(), the simulator's JSON API end to end, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.sandbox.demo_data import ADMIN_CHANNEL, PERSONAS
from bot.sandbox.slack_signing import block_action_body, headers_for
from entrypoints.demo import Demo, start_demo

pytestmark = pytest.mark.integration

ALICE, BOB, GRACE, HEIDI, ZOE = (p.user_id for p in PERSONAS[:5])
ROOT = Path(__file__).resolve().parents[2]


class Page:
    """What the simulator page does, over HTTP."""

    def __init__(self, demo: Demo) -> None:
        self.url = demo.url
        self.root = demo.slack.base_url

    def get(self, path: str, *, root: bool = False) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen((self.root if root else self.url) + path, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def post(
        self, path: str, body: dict[str, Any], content_type: str = "application/json", **headers: str
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.url + "api/" + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": content_type, **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def ok(self, path: str, **body: Any) -> None:
        status, answer = self.post(path, body)
        assert status == 200 and answer["ok"], answer

    def state(self, user: str) -> dict[str, Any]:
        status, _, body = self.get(f"api/state?user={user}")
        assert status == 200, body
        return dict(json.loads(body))

    def items(self, user: str, conversation: str = "dm") -> list[dict[str, Any]]:
        state = self.state(user)
        conv = next(c for c in state["conversations"] if c["key"] == conversation)
        return list(state["timelines"][conv["id"]])

    def wait(self, read: Callable[[], Any], timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)


def text_of(item: dict[str, Any]) -> str:
    return json.dumps(item.get("blocks") or [], ensure_ascii=False) + str(item.get("text", ""))


def button(item: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in item.get("blocks") or []:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "b")}
    raise AssertionError(f"no {action_id} in {item}")


def ephemerals_with(page: Page, user: str, text: str, conversation: str = "dm") -> list[dict[str, Any]]:
    return [i for i in page.items(user, conversation) if i["kind"] == "ephemeral" and text in text_of(i)]


def token_of(demo: Demo, owner: str, workspace: str = "prod") -> str:
    with demo.databricks.lock:
        return next(
            t.token_id for t in demo.databricks.workspace(workspace).tokens if t.created_by_username == owner
        )


@pytest.fixture
def demo() -> Iterator[Demo]:
    running = start_demo(port=0)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def page(demo: Demo) -> Page:
    return Page(demo)


# --------------------------------------------------------------------------- the world it starts


def test_the_fleet_covers_every_finding_and_the_bot_answers(demo: Demo) -> None:
    from bot.governance.audit import audit
    from bot.governance.models import Finding

    report = audit(demo.services.fleet, demo.services.policy, now=demo.services.clock())
    assert len(report.tokens) == 60 and not report.failed
    assert {f for t in report.tokens for f in t.findings} == set(Finding)
    assert demo.services.settings.scheduler == "off" and demo.services.embedded_store
    assert all("patbot" in demo.databricks.workspace(n).secret_scopes for n in demo.databricks.names)
    with urllib.request.urlopen(demo.bot_url + "/healthz", timeout=5) as response:
        assert response.status == 200


def test_the_page_and_its_assets_are_served_with_a_strict_policy(page: Page) -> None:
    status, headers, body = page.get("")
    assert status == 200 and b"static/simulator.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for asset in ("static/simulator.js", "static/simulator.css"):
        assert page.get(asset)[0] == 200
    assert page.get("static/../demo.py")[0] == 404
    state = page.state("")
    assert state["me"]["id"] == ALICE
    assert [p["id"] for p in state["people"]][:5] == [ALICE, BOB, GRACE, HEIDI, ZOE]


def test_the_bot_refuses_unsigned_requests(demo: Demo) -> None:
    body = block_action_body(ALICE, "pat_approve", "x", None, "C1", "1.1")
    request = urllib.request.Request(
        demo.bot_url + "/slack/events",
        data=body.encode(),
        headers=headers_for(body, "not-the-demo-secret"),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401


# --------------------------------------------------------------------------- round trips


def test_a_command_round_trip(page: Page) -> None:
    page.ok("command", user=ALICE, text="/pat audit")
    (reply,) = page.wait(lambda: ephemerals_with(page, ALICE, "Your Databricks tokens"))
    assert "alice@example.com" in text_of(reply)
    kinds = [i["kind"] for i in page.items(ALICE)]
    assert kinds == ["note", "ephemeral"], "the typed command, then the bot's ephemeral answer"
    assert page.items(BOB) == [], "ephemerals are only visible to their user"

    page.ok("command", user=ZOE, text="/pat audit", channel=ADMIN_CHANNEL)
    (reply,) = page.wait(lambda: ephemerals_with(page, ZOE, "No personal access tokens", "admin"))
    assert page.items(ZOE, "dm") == []


def test_typed_mentions_reach_the_bot_escaped_as_slack_sends_them(page: Page) -> None:
    page.ok("command", user=GRACE, text="/pat audit @alice")
    (reply,) = page.wait(lambda: ephemerals_with(page, GRACE, "Token audit"))
    assert "Token audit: alice@example.com" in text_of(reply)


def test_only_pat_commands_and_known_users_are_accepted(page: Page) -> None:
    status, answer = page.post("command", {"user": ALICE, "text": "hello"})
    assert status == 400 and "/pat" in answer["error"]
    status, answer = page.post("command", {"user": "U0NOBODY0", "text": "/pat help"})
    assert status == 400 and "unknown user" in answer["error"]
    assert page.get("api/state?user=U0NOBODY0")[0] == 400


def test_cross_site_posts_are_refused(page: Page) -> None:
    status, _ = page.post("command", {"user": ALICE, "text": "/pat help"}, content_type="text/plain")
    assert status == 403
    status, _ = page.post("command", {"user": ALICE, "text": "/pat help"}, Origin="http://evil.example")
    assert status == 403
    status, _ = page.post("command", {"user": ALICE, "text": "/pat help"}, Host="evil.example")
    assert status == 421, "a rebound DNS name is not answered"
    status, _ = page.post("command", {"user": ALICE, "text": "/pat help"}, Host=page.url.split("/")[2])
    assert status == 200


def test_revoke_request_approved_through_the_api(demo: Demo, page: Page) -> None:
    token_id = token_of(demo, "alice@example.com")
    page.ok("command", user=BOB, text=f"/pat revoke {token_id[:12]} left the team")
    page.wait(lambda: ephemerals_with(page, BOB, "sent to the approvers"))
    (request,) = page.wait(lambda: page.items(GRACE, "admin"))
    approve = button(request, "pat_approve")

    # A non-approver's click is refused, ephemerally, and nothing changes.
    page.ok("action", user=ZOE, source=request["source"], action_id="pat_approve", value=approve["value"])
    page.wait(lambda: ephemerals_with(page, ZOE, "approver", "admin"))
    assert demo.databricks.workspace("prod").token(token_id) is not None

    page.ok(
        "action",
        user=GRACE,
        source=request["source"],
        action_id="pat_approve",
        block_id=approve["block_id"],
        value=approve["value"],
        text="Approve",
    )
    (decided,) = page.wait(lambda: [i for i in page.items(GRACE, "admin") if "Approved by" in text_of(i)])
    assert decided["edited"] and "pat_approve" not in text_of(decided)
    assert demo.databricks.workspace("prod").token(token_id) is None
    assert page.wait(lambda: [i for i in page.items(ALICE) if "your token" in text_of(i)])
    assert page.wait(lambda: [i for i in page.items(BOB) if i["kind"] == "message"])

    page.ok("command", user=ALICE, text="/pat audit")
    (after,) = page.wait(lambda: ephemerals_with(page, ALICE, "Your Databricks tokens"))
    assert token_id[:12] not in text_of(after)


def test_owner_confirmation_replaces_the_ephemeral(demo: Demo, page: Page) -> None:
    token_id = token_of(demo, "alice@example.com", "staging")
    page.ok("command", user=ALICE, text=f"/pat revoke {token_id[:12]}")
    (confirm,) = page.wait(lambda: ephemerals_with(page, ALICE, "Revoke now"))
    now = button(confirm, "pat_confirm_self")
    page.ok("action", user=ALICE, source=confirm["source"], action_id="pat_confirm_self", value=now["value"])
    page.wait(lambda: ephemerals_with(page, ALICE, "Revoked"))
    ephemerals = [i for i in page.items(ALICE) if i["kind"] == "ephemeral"]
    assert len(ephemerals) == 1 and "Revoke now" not in text_of(ephemerals[0]), "replaced in place"
    assert demo.databricks.workspace("staging").token(token_id) is None


def test_home_tab_revoke_through_a_modal(demo: Demo, page: Page) -> None:
    page.ok("home", user=ALICE)
    home = page.wait(lambda: page.state(ALICE)["home"])
    row = next(b for b in home["blocks"] if b.get("accessory", {}).get("action_id") == "pat_revoke_own")
    token_id = row["accessory"]["value"]
    page.ok("action", user=ALICE, source={"kind": "home"}, action_id="pat_revoke_own", value=token_id)
    modal = page.wait(lambda: (page.state(ALICE)["modal"] or {}).get("submit") and page.state(ALICE)["modal"])
    assert page.state(BOB)["modal"] is None, "a modal is shown to the user who opened it"
    page.ok("submit", user=ALICE, view_id=modal["id"])
    assert page.wait(lambda: "Revoked" in json.dumps(page.state(ALICE)["modal"]))
    finished = page.state(ALICE)["modal"]
    assert "submit" not in finished, "Slack replaced the view: no Revoke now on a finished modal"
    assert finished["close"]["text"] == "Close" and "Approved by" not in json.dumps(finished)
    assert all(demo.databricks.workspace(n).token(token_id) is None for n in demo.databricks.names)
    page.ok("close", user=ALICE, view_id=modal["id"])
    assert page.state(ALICE)["modal"] is None


def test_fleet_audit_sends_a_csv_that_downloads(demo: Demo, page: Page) -> None:
    page.ok("command", user=GRACE, text="/pat audit all")
    page.wait(lambda: ephemerals_with(page, GRACE, "Token audit"))
    (message,) = page.wait(lambda: [i for i in page.items(GRACE) if i.get("files")])
    (file,) = message["files"]
    status, headers, body = page.get(file["url"], root=True)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert body.count(b"\n") >= 60


def test_weekly_job_from_the_page(demo: Demo, page: Page) -> None:
    state = page.state(GRACE)
    if not state["weekly"]["available"]:
        pytest.skip(state["weekly"]["note"])
    page.ok("weekly", user=GRACE)
    weekly = page.wait(lambda: (w := page.state(GRACE)["weekly"])["last"] and w)
    assert not weekly["error"] and "reminder DM" in weekly["last"], weekly
    (summary,) = page.wait(lambda: [i for i in page.items(GRACE, "admin") if not i.get("thread_ts")])
    assert page.wait(lambda: [i for i in page.items(ALICE) if "pat_revoke_own" in text_of(i)])
    assert page.items(ZOE) == [], "no stale or non-expiring tokens, no reminder"
    files = [f for i in page.items(GRACE, "admin") for f in i["files"]]
    assert any(f["name"].endswith(".csv") for f in files)
    assert summary


def test_the_walkthrough_narrows_alices_dbt_token_from_her_weekly_dm(demo: Demo, page: Page) -> None:
    """README walkthrough step 7: the Narrow button, a confirmation, one PATCH."""
    state = page.state(GRACE)
    if not state["weekly"]["available"]:
        pytest.skip(state["weekly"]["note"])
    page.ok("weekly", user=GRACE)
    (dm,) = page.wait(lambda: [i for i in page.items(ALICE) if "pat_narrow_own" in text_of(i)])
    with demo.databricks.lock:
        dbt = next(t for t in demo.databricks.workspace("prod").tokens if t.comment == "dbt prod")
    narrow = next(
        b["accessory"]
        for b in dm["blocks"]
        if b.get("accessory", {}).get("value") == dbt.token_id
        and b["accessory"]["action_id"] == "pat_narrow_own"
    )
    assert narrow["text"]["text"] == "Narrow to sql, unity-catalog (read)"
    page.ok("action", user=ALICE, source=dm["source"], action_id="pat_narrow_own", value=narrow["value"])
    (confirm,) = page.wait(lambda: ephemerals_with(page, ALICE, "Narrow now"))
    assert "full access → sql, unity-catalog (read)" in text_of(confirm)
    now = button(confirm, "pat_confirm_self")
    page.ok("action", user=ALICE, source=confirm["source"], action_id="pat_confirm_self", value=now["value"])
    page.wait(lambda: ephemerals_with(page, ALICE, "Narrowed"))
    assert demo.databricks.workspace("prod").token(dbt.token_id).scopes == ["sql", "unity-catalog:read"]
    assert demo.databricks.count_requests("PATCH", "/api/2.0/token-management/tokens/") == 1


# --------------------------------------------------------------------------- lifecycle


def _refused(url: str) -> bool:
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) != 0


def test_stop_is_clean() -> None:
    before = set(threading.enumerate())
    demo = start_demo(port=0)
    page = Page(demo)
    page.ok("command", user=ALICE, text="/pat audit")
    page.wait(lambda: ephemerals_with(page, ALICE, "Your Databricks tokens"))
    urls = [demo.url, demo.bot_url, *demo.databricks.hosts]
    demo.stop()
    demo.stop()  # idempotent
    deadline = time.monotonic() + 5
    while (leaked := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leaked, [t.name for t in leaked]
    assert all(_refused(url) for url in urls)


def test_a_taken_port_is_named(demo: Demo) -> None:
    port = int(demo.url.split(":")[2].split("/")[0])
    with pytest.raises(ConfigError, match="PATBOT_DEMO_PORT"):
        start_demo(port=port)


def test_patbot_demo_prints_the_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PATBOT_DEMO_PORT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from entrypoints.cli import main; raise SystemExit(main(['demo']))"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "Slack simulator" in line:
                url = line.split()[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/simulator/"), url
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
