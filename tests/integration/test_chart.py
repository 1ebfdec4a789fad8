"""The Helm chart, rendered by the real `helm`: lint, schema, objects, and the fail guards.

Skipped when `helm` is not on PATH. The rendered manifests are also checked against the
Kubernetes OpenAPI schemas with `kubernetes-validate --strict` when that is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read rendered manifests")

from bot.settings import load_settings  # noqa: E402  (after the importorskip above)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "patbot"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
MINIMAL = CHART / "ci" / "minimal-values.yaml"
PRODUCTION = CHART / "ci" / "production-values.yaml"
SOCKET = CHART / "ci" / "socket-mode-values.yaml"
RELEASE = "pb"
NAMESPACE = "patbot"

HELM = shutil.which("helm")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(HELM is None, reason="helm is not on PATH"),
]


def _tool(name: str) -> str | None:
    """A console script of this virtualenv, else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=False)


def template_text(*files: Path, sets: tuple[str, ...] = ()) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for f in files:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(*files: Path, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(template_text(*files, sets=sets)) if doc]


def render_error(*files: Path, sets: tuple[str, ...] = ()) -> str:
    args = ["template", RELEASE, str(CHART)]
    for f in files:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    result = helm(*args)
    assert result.returncode != 0, f"expected helm to refuse {sets}, it rendered"
    return result.stderr


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {[d['metadata']['name'] for d in find(docs, kind)]}"
    return found[0]


def bot(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment", f"{RELEASE}-patbot")


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The pod specs of patbot's own workloads (bot and jobs, not Redis)."""
    for d in docs:
        if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{RELEASE}-patbot":
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]
        if d["kind"] == "CronJob":
            yield d["metadata"]["name"], d["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- lint and schema -------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_helm_lint_strict(values: Path) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_rendered_objects_are_valid_kubernetes(values: Path, tmp_path: Path) -> None:
    validator = _tool("kubernetes-validate")
    if validator is None:
        pytest.skip("kubernetes-validate is not installed")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(template_text(values))
    for version in ("1.27.0", None):  # the chart's kubeVersion floor, and the latest known
        args = [validator, "--strict", "--quiet"] + (["-k", version] if version else []) + [str(rendered)]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_defaults_alone_are_refused_naming_the_first_missing_setting() -> None:
    assert "config.adminChannel is required" in render_error()


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("config.adminChannel=general",), "/config/adminChannel"),
        (("config.approvers[0]=alice",), "/config/approvers/0"),
        (("replicaCount=-1",), "/replicaCount"),
        (("cronJobs.remind.schedule=weekly",), "/cronJobs/remind/schedule"),
        (("redis.auth.password=p@ss:word",), "/redis/auth/password"),
        (("typo=1",), "typo"),
    ],
)
def test_schema_refuses_bad_values(sets: tuple[str, ...], message: str) -> None:
    assert message in render_error(MINIMAL, sets=sets)


# --- fail guards -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("redis.enabled=false", "replicaCount=2"), "replicaCount > 1 needs a shared Redis"),
        (("redis.enabled=false", "autoscaling.enabled=true"), "autoscaling.enabled needs a shared Redis"),
        (("redis.enabled=false", "podDisruptionBudget.enabled=true"), "podDisruptionBudget.enabled needs"),
        (("redis.enabled=false",), "cronJobs.enabled needs a shared Redis"),
        (
            ("replicaCount=2", "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=2"),
            "minAvailable must be below replicaCount",
        ),
        (("podDisruptionBudget.enabled=true",), "minAvailable must be below replicaCount"),
        (("externalRedis.enabled=true", "externalRedis.existingSecret=r"), "mutually exclusive"),
        (("redis.enabled=false", "externalRedis.enabled=true"), "externalRedis.existingSecret is required"),
        (
            ("slack.socketMode=true", "secret.slackAppToken=xapp-1", "ingress.enabled=true"),
            "ingress.enabled makes no sense with slack.socketMode",
        ),
        (("slack.socketMode=true",), "slack.socketMode needs secret.slackAppToken"),
        (("config.adminChannel=",), "config.adminChannel is required"),
        (("config.approvers=null",), "config.approvers is required"),
        (("databricks.host=",), "one of databricks.host, databricks.workspaces or databricks.accountId"),
        (("secret.slackSigningSecret=",), "set existingSecret, or secret.slackBotToken and"),
    ],
)
def test_impossible_combinations_are_refused(sets: tuple[str, ...], message: str) -> None:
    assert message in render_error(MINIMAL, sets=sets)


def test_replicas_are_allowed_with_a_shared_redis() -> None:
    docs = render(MINIMAL, sets=("replicaCount=3", "podDisruptionBudget.enabled=true"))
    assert bot(docs)["spec"]["replicas"] == 3
    assert one(docs, "PodDisruptionBudget", f"{RELEASE}-patbot")["spec"]["minAvailable"] == 1


# --- security --------------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_patbot_pod_runs_locked_down(values: Path) -> None:
    docs = render(values)
    specs = dict(pod_specs(docs))
    assert specs, "no patbot workload rendered"
    for name, spec in specs.items():
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp and "emptyDir" in tmp[0], name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
            assert container["resources"], name


def test_bundled_redis_is_locked_down_too() -> None:
    redis = one(render(MINIMAL), "Deployment", f"{RELEASE}-patbot-redis")
    spec = redis["spec"]["template"]["spec"]
    assert redis["spec"]["replicas"] == 1 and redis["spec"]["strategy"] == {"type": "Recreate"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["image"] == "redis:7-alpine"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "--requirepass" in container["args"]
    assert spec["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": f"{RELEASE}-patbot-redis"}}
    ]


def test_service_account_does_not_mount_a_token() -> None:
    sa = one(render(MINIMAL), "ServiceAccount", f"{RELEASE}-patbot")
    assert sa["automountServiceAccountToken"] is False


# --- the bot ---------------------------------------------------------------------------------


def test_probes_use_the_health_endpoints() -> None:
    (container,) = bot(render(MINIMAL))["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert container["args"] == ["serve"]


def test_config_and_secret_changes_roll_the_pods() -> None:
    def annotations(*sets: str) -> dict[str, str]:
        return bot(render(MINIMAL, sets=sets))["spec"]["template"]["metadata"]["annotations"]

    base = annotations()
    assert set(base) >= {"checksum/config", "checksum/secret"}
    assert annotations()["checksum/config"] == base["checksum/config"]  # stable between renders
    assert annotations("config.staleDays=45")["checksum/config"] != base["checksum/config"]
    assert annotations("secret.slackBotToken=xoxb-other")["checksum/secret"] != base["checksum/secret"]
    # A Secret the chart does not manage cannot be summed.
    assert "checksum/secret" not in annotations("existingSecret=creds")


def test_configmap_holds_only_non_secret_settings_and_the_app_accepts_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docs = render(PRODUCTION)
    data = one(docs, "ConfigMap", f"{RELEASE}-patbot")["data"]
    assert data["PATBOT_ADMIN_CHANNEL"] == "C0123ABCD"
    assert data["PATBOT_APPROVERS"] == "U0123ABCD,W0123ABCD,S0123ABCD"
    assert data["PATBOT_APPROVAL_TTL_HOURS"] == "0.5"
    assert data["PATBOT_STALE_DAYS"] == "45"
    assert data["PATBOT_TIMEZONE"] == "Europe/Paris"
    assert "PATBOT_MAX_LIFETIME_DAYS" not in data  # unset values keep the app's defaults
    assert "PATBOT_REQUIRE_SCOPES" not in data
    relaxed = one(render(PRODUCTION, sets=("config.requireScopes=false",)), "ConfigMap", f"{RELEASE}-patbot")
    assert relaxed["data"]["PATBOT_REQUIRE_SCOPES"] == "false"
    secrets = {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CLIENT_SECRET",
        "REDIS_URL",
    }
    assert not secrets & set(data)

    # What the pods would see: the ConfigMap, then a credentials Secret with the documented keys.
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key in list(os.environ):
        if key.startswith(("PATBOT_", "SLACK_", "DATABRICKS_", "REDIS_")):
            monkeypatch.delenv(key)
    for key, value in {**data, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    settings = load_settings(tmp_path / "no-secrets-dir")
    settings.require_for_serve()
    assert settings.approval_ttl_hours == 0.5
    assert settings.account_mode


def test_existing_secret_replaces_the_chart_secret() -> None:
    inline = render(MINIMAL)
    secret = one(inline, "Secret", f"{RELEASE}-patbot")
    assert set(secret["data"]) == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABRICKS_TOKEN"}

    docs = render(MINIMAL, sets=("existingSecret=patbot-credentials",))
    assert find(docs, "Secret", f"{RELEASE}-patbot") == []
    for name, spec in pod_specs(docs):
        (container,) = spec["containers"]
        assert {"secretRef": {"name": "patbot-credentials"}} in container["envFrom"], name


def test_extra_secret_variables_are_passed_by_name() -> None:
    secret = one(render(SOCKET), "Secret", f"{RELEASE}-patbot")
    assert {"SLACK_APP_TOKEN", "DATABRICKS_CLIENT_SECRET", "ARM_CLIENT_SECRET"} <= set(secret["data"])


def test_http_mode_has_a_service_and_optionally_an_ingress() -> None:
    docs = render(MINIMAL)
    service = one(docs, "Service", f"{RELEASE}-patbot")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert find(docs, "Ingress") == []

    ingress = one(render(PRODUCTION), "Ingress", f"{RELEASE}-patbot")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "patbot.example.com"
    assert [p["path"] for p in rule["http"]["paths"]] == ["/slack/events"]
    assert ingress["spec"]["tls"][0]["secretName"] == "patbot-tls"


def test_socket_mode_has_no_service() -> None:
    docs = render(SOCKET)
    assert find(docs, "Service", f"{RELEASE}-patbot") == []
    assert find(docs, "Ingress") == []
    (container,) = bot(docs)["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["serve", "--socket"]
    # Health endpoints are still served, so the probes stay.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


# --- Redis choices ---------------------------------------------------------------------------


def test_bundled_redis_url_carries_the_generated_password() -> None:
    docs = render(MINIMAL)
    env = env_of(bot(docs)["spec"]["template"]["spec"]["containers"][0])
    assert env["REDIS_PASSWORD"] == {
        "secretKeyRef": {"name": f"{RELEASE}-patbot-redis", "key": "redis-password"}
    }
    assert env["REDIS_URL"] == f"redis://:$(REDIS_PASSWORD)@{RELEASE}-patbot-redis:6379/0"
    names = [e["name"] for e in bot(docs)["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")  # $(…) needs it first
    password = one(docs, "Secret", f"{RELEASE}-patbot-redis")["data"]["redis-password"]
    assert len(password) >= 32
    assert one(docs, "Service", f"{RELEASE}-patbot-redis")["spec"]["ports"][0]["port"] == 6379


def test_bundled_redis_with_an_existing_password_secret() -> None:
    docs = render(MINIMAL, sets=("redis.auth.existingSecret=redis-pw", "redis.auth.existingSecretKey=pw"))
    assert find(docs, "Secret", f"{RELEASE}-patbot-redis") == []
    env = env_of(bot(docs)["spec"]["template"]["spec"]["containers"][0])
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis-pw", "key": "pw"}}


def test_external_redis_url_comes_from_its_secret() -> None:
    docs = render(PRODUCTION)
    assert find(docs, "Deployment", f"{RELEASE}-patbot-redis") == []
    for name, spec in pod_specs(docs):
        env = env_of(spec["containers"][0])
        assert env["REDIS_URL"] == {"secretKeyRef": {"name": "patbot-redis", "key": "url"}}, name
        assert "REDIS_PASSWORD" not in env, name


def test_embedded_store_without_redis() -> None:
    docs = render(MINIMAL, sets=("redis.enabled=false", "cronJobs.enabled=false"))
    assert find(docs, "Deployment", f"{RELEASE}-patbot-redis") == []
    assert find(docs, "CronJob", f"{RELEASE}-patbot-remind") == []
    env = env_of(bot(docs)["spec"]["template"]["spec"]["containers"][0])
    assert "REDIS_URL" not in env


# --- weekly jobs -----------------------------------------------------------------------------


def test_cronjobs_run_the_weekly_commands_and_switch_the_scheduler_off() -> None:
    docs = render(PRODUCTION)
    expected = {"remind": "0 8 * * 1", "summary": "30 8 * * 1"}
    for command, schedule in expected.items():
        job = one(docs, "CronJob", f"{RELEASE}-patbot-{command}")
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert job["spec"]["schedule"] == schedule
        assert job["spec"]["timeZone"] == "Europe/Paris"
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        (container,) = pod["containers"]
        assert container["args"] == [command]
        assert env_of(container)["PATBOT_SCHEDULER"] == "off"
    (container,) = bot(docs)["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["PATBOT_SCHEDULER"] == "off"


def test_default_schedule_is_monday_nine() -> None:
    docs = render(MINIMAL)
    for command in ("remind", "summary"):
        job = one(docs, "CronJob", f"{RELEASE}-patbot-{command}")
        assert job["spec"]["schedule"] == "0 9 * * 1"
        assert job["spec"]["timeZone"] == "UTC"


def test_without_cronjobs_the_bot_schedules_itself() -> None:
    docs = render(SOCKET)
    assert find(docs, "CronJob") == []
    (container,) = bot(docs)["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["PATBOT_SCHEDULER"] == "on"
    assert one(docs, "ConfigMap", f"{RELEASE}-patbot")["data"]["PATBOT_REMINDER_CRON"] == "0 9 * * mon"


def test_dry_run_arguments_reach_the_job() -> None:
    docs = render(MINIMAL, sets=("cronJobs.remind.extraArgs[0]=--dry-run",))
    job = one(docs, "CronJob", f"{RELEASE}-patbot-remind")
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["remind", "--dry-run"]


# --- optional objects ------------------------------------------------------------------------


def test_autoscaling_replaces_the_replica_count() -> None:
    docs = render(PRODUCTION)
    assert "replicas" not in bot(docs)["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler", f"{RELEASE}-patbot")
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-patbot"


def test_network_policy_allows_dns_https_and_the_bundled_redis() -> None:
    docs = render(MINIMAL, sets=("networkPolicy.enabled=true",))
    policy = one(docs, "NetworkPolicy", f"{RELEASE}-patbot")
    ports = [p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])]
    assert {53, 443, 6379} <= set(ports)
    redis = one(docs, "NetworkPolicy", f"{RELEASE}-patbot-redis")
    assert redis["spec"]["egress"] == []
    assert find(render(MINIMAL), "NetworkPolicy") == []


def test_notes_explain_the_request_url() -> None:
    result = helm("install", RELEASE, str(CHART), "--dry-run=client", "-f", str(PRODUCTION))
    if result.returncode != 0 and "unknown flag" in result.stderr:  # helm 3's plain --dry-run
        result = helm("install", RELEASE, str(CHART), "--dry-run", "-f", str(PRODUCTION))
    assert result.returncode == 0, result.stderr
    assert "https://patbot.example.com/slack/events" in result.stdout
