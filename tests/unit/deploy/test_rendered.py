"""The Kubernetes overlays as a cluster would get them: rendered with kustomize, then checked.

Every overlay (dev, production), each with and without the Riva component, is rendered with
``kustomize build`` (or ``kubectl kustomize``); without either the tests fail, never skip.
Then:

* every built-in object validates against the Kubernetes OpenAPI schemas bundled in the
  kubernetes-validate package (strict: unknown fields are errors; no download);
* every custom resource (Strimzi, KEDA, Prometheus Operator) has the fields its CRD requires;
* following the overlay's written instructions (the ``kubectl create secret`` commands in its
  kustomization.yaml) gives each process an environment its settings class accepts;
* references resolve (ConfigMaps, Secrets, ServiceAccounts, scale targets, Services);
* replicas are owned by one autoscaler each; KEDA's lag trigger, the Kafka principals' ACLs
  and the KafkaTopics agree with what the code does (consumer group, topics, topic configs).
"""

import base64
import itertools
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from medvoice_common.kafka import topic_specs
from processors.settings import WorkerSettings
from processors.webhooks.settings import WebhookSettings
from producer_api.settings import ApiOptions, ApiSettings
from tests.unit.deploy.deploy_support import (
    ALL_INTERFACES,
    K8S,
    PLACEHOLDER_SECRET,
    PROCESS_SETTINGS,
    build_settings,
    load,
    render,
    unknown_names,
)

RIVA = K8S / "components" / "riva"
CASES = {
    "dev": ("overlays/dev", False),
    "dev+riva": ("overlays/dev", True),
    "production": ("overlays/production", False),
    "production+riva": ("overlays/production", True),
}
# The oldest Kubernetes the manifests are for (Strimzi 0.48 needs 1.27+, KEDA 2.13+ runs on
# it) and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


@dataclass
class Rendered:
    case: str
    overlay: Path
    riva: bool
    docs: list[dict[str, Any]]
    namespace: str = field(init=False)

    def __post_init__(self) -> None:
        (ns,) = self.of("Namespace")
        self.namespace = ns["metadata"]["name"]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.case}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.of(kind)}


@pytest.fixture(scope="module", params=list(CASES))
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    case: str = request.param
    overlay_rel, riva = CASES[case]
    overlay = K8S / overlay_rel
    if not riva:
        return Rendered(case, overlay, riva, render(overlay))
    # As the overlay's comment says: add the component to the overlay's own kustomization
    # (in a copy of k8s/, so the overlay's namespace and patches apply to it too).
    copy = tmp_path_factory.mktemp(case.replace("+", "-")) / "k8s"
    shutil.copytree(K8S, copy)
    directory = copy / overlay_rel
    kustomization = load(directory / "kustomization.yaml")
    kustomization["components"] = [
        *kustomization.get("components", []),
        os.path.relpath(copy / RIVA.relative_to(K8S), directory),
    ]
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return Rendered(case, overlay, riva, render(directory))


# --- built-in objects: the Kubernetes OpenAPI schemas -----------------------------------------


def is_builtin(doc: dict[str, Any]) -> bool:
    group = doc["apiVersion"].rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


def test_builtin_objects_match_the_kubernetes_schemas(rendered: Rendered) -> None:
    builtin = [d for d in rendered.docs if is_builtin(d)]
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap"} <= {d["kind"] for d in builtin}
    for doc, version in itertools.product(builtin, KUBERNETES_VERSIONS):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{rendered.case}: {name} is invalid on Kubernetes {version}: {path}: {exc}"
            )


# --- custom resources: the fields their CRDs require ------------------------------------------

# (apiVersion, kind) -> paths that must be present and non-empty; "[]" walks every list item.
# From the CRDs' openAPIV3Schema "required" lists and the operators' documented needs:
#   Strimzi 0.48.0, kafka.strimzi.io/v1beta2 (040-Crd-kafka, 045-Crd-kafkanodepool,
#     043-Crd-kafkatopic, 044-Crd-kafkauser); the strimzi.io/cluster label is how the
#     node-pool, topic and user operators find their cluster;
#   KEDA 2.13+ keda.sh/v1alpha1 (keda.sh_scaledobjects, keda.sh_triggerauthentications);
#   Prometheus Operator monitoring.coreos.com/v1 (prometheusrules, servicemonitors).
CRD_REQUIRED: dict[tuple[str, str], list[str]] = {
    ("kafka.strimzi.io/v1beta2", "Kafka"): [
        "spec.kafka.listeners",
        "spec.kafka.listeners[].name",
        "spec.kafka.listeners[].port",
        "spec.kafka.listeners[].type",
        "spec.kafka.listeners[].tls",
    ],
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): [
        "metadata.labels.strimzi.io/cluster",
        "spec.replicas",
        "spec.roles",
        "spec.storage.type",
    ],
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): [
        "metadata.labels.strimzi.io/cluster",
        "spec.topicName",
        "spec.partitions",
        "spec.replicas",
    ],
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): [
        "metadata.labels.strimzi.io/cluster",
        "spec.authentication.type",
        "spec.authorization.type",
        "spec.authorization.acls[].resource.type",
        "spec.authorization.acls[].operations",
    ],
    ("keda.sh/v1alpha1", "ScaledObject"): [
        "spec.scaleTargetRef.name",
        "spec.triggers",
        "spec.triggers[].type",
        "spec.triggers[].metadata",
    ],
    ("keda.sh/v1alpha1", "TriggerAuthentication"): [
        "spec.secretTargetRef[].parameter",
        "spec.secretTargetRef[].name",
        "spec.secretTargetRef[].key",
        "spec.configMapTargetRef[].parameter",
        "spec.configMapTargetRef[].name",
        "spec.configMapTargetRef[].key",
    ],
    ("monitoring.coreos.com/v1", "PrometheusRule"): [
        "spec.groups[].name",
        "spec.groups[].rules",
        "spec.groups[].rules[].expr",
    ],
    ("monitoring.coreos.com/v1", "ServiceMonitor"): [
        "spec.selector",
        "spec.endpoints[].port",
    ],
}
ACL_OPERATIONS = {
    "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "AlterConfigs",
    "DescribeConfigs", "IdempotentWrite", "All",
}  # fmt: skip
ACL_RESOURCE_TYPES = {"topic", "group", "cluster", "transactionalId"}
KEDA_TARGET_KINDS = {"Deployment", "StatefulSet"}


def values_at(doc: Any, path: str) -> list[Any]:
    """The values at a dotted ``path`` (label keys with dots allowed last); ``[]`` walks lists."""
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        items = doc.get(head[:-2]) if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return [None]
        return [v for item in items for v in (values_at(item, rest) if rest else [item])]
    if not isinstance(doc, dict):
        return [None]
    if path in doc:  # a key with dots, such as strimzi.io/cluster
        return [doc[path]]
    value = doc.get(head)
    return values_at(value, rest) if rest else [value]


def test_custom_resources_have_their_required_fields(rendered: Rendered) -> None:
    custom = [d for d in rendered.docs if not is_builtin(d)]
    assert custom
    for doc in custom:
        key = (doc["apiVersion"], doc["kind"])
        name = f"{rendered.case}: {doc['kind']}/{doc['metadata'].get('name')}"
        assert key in CRD_REQUIRED, f"{name}: no check for {key}; add its CRD's required fields"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), name
        for path in CRD_REQUIRED[key]:
            for value in values_at(doc, path):
                assert value not in (None, "", [], {}), f"{name}: {path} is required"


def test_custom_resources_field_values(rendered: Rendered) -> None:
    """Values the CRDs constrain: enums and types a YAML slip would get wrong."""
    (kafka,) = rendered.of("Kafka")
    cluster = kafka["metadata"]["name"]
    for kind in ("KafkaNodePool", "KafkaTopic", "KafkaUser"):
        for doc in rendered.of(kind):
            assert doc["metadata"]["labels"]["strimzi.io/cluster"] == cluster, doc["metadata"]
    for topic in rendered.of("KafkaTopic"):
        assert isinstance(topic["spec"]["partitions"], int)
        assert isinstance(topic["spec"]["replicas"], int)
    for user in rendered.of("KafkaUser"):
        for acl in user["spec"]["authorization"]["acls"]:
            assert "operation" not in acl, "deprecated; Strimzi 0.49+ wants operations"
            assert set(acl["operations"]) <= ACL_OPERATIONS, acl
            resource = acl["resource"]
            assert resource["type"] in ACL_RESOURCE_TYPES, acl
            if resource["type"] != "cluster":
                assert resource["name"], acl
                assert resource.get("patternType", "literal") in {"literal", "prefix"}, acl
    for scaled in rendered.of("ScaledObject"):
        assert scaled["spec"]["scaleTargetRef"]["kind"] in KEDA_TARGET_KINDS
        for trigger in scaled["spec"]["triggers"]:
            for key, value in trigger["metadata"].items():  # map[string]string in the CRD
                assert isinstance(value, str), f"{scaled['metadata']['name']}: {key}={value!r}"
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    for rule_set in rendered.of("PrometheusRule"):
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                assert ("alert" in rule) != ("record" in rule), rule


# --- references -------------------------------------------------------------------------------

COMMAND = re.compile(
    r"kubectl\s+(?:-n\s+(\S+)\s+)?create secret (generic|docker-registry) ([\w.-]+)"
)


def instructed_secrets(kustomization: Path, namespace: str) -> dict[str, set[str]]:
    """Secret name -> keys, for each ``kubectl create secret`` command in the file's comments.

    A command's ``-n`` must be the overlay's namespace (or a ``<placeholder>``).
    """
    commands: list[str] = []
    pending = ""
    for line in kustomization.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("#"):
            continue
        text = line.lstrip().lstrip("#").strip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        commands.append(pending + text)
        pending = ""
    secrets: dict[str, set[str]] = {}
    for command in commands:
        match = COMMAND.search(command)
        if match is None:
            continue
        given, kind, name = match.groups()
        assert given in (None, namespace) or given.startswith("<"), f"{kustomization}: -n {given}"
        if kind == "docker-registry":
            secrets[name] = {".dockerconfigjson"}
        else:
            secrets[name] = set(re.findall(r"--from-literal=([\w.-]+)=", command))
            assert secrets[name], f"{kustomization}: {command!r} creates no key"
    return secrets


def all_instructions(rendered: Rendered) -> dict[str, set[str]]:
    secrets = instructed_secrets(rendered.overlay / "kustomization.yaml", rendered.namespace)
    if rendered.riva:
        secrets |= instructed_secrets(RIVA / "kustomization.yaml", rendered.namespace)
    return secrets


def operator_secrets(rendered: Rendered) -> dict[str, dict[str, str]]:
    """Secrets the operators create: Strimzi's per KafkaUser (SCRAM) and the cluster CA."""
    secrets = {
        u["metadata"]["name"]: {"password": PLACEHOLDER_SECRET} for u in rendered.of("KafkaUser")
    }
    for kafka in rendered.of("Kafka"):
        secrets[f"{kafka['metadata']['name']}-cluster-ca-cert"] = {"ca.crt": PLACEHOLDER_SECRET}
    return secrets


def rendered_secrets(rendered: Rendered) -> dict[str, dict[str, str]]:
    secrets = {}
    for secret in rendered.of("Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        secrets[secret["metadata"]["name"]] = data | secret.get("stringData", {})
    return secrets


def cluster_secrets(
    rendered: Rendered, instructed: dict[str, set[str]]
) -> dict[str, dict[str, str]]:
    """Every Secret the namespace holds once the instructions are followed."""
    made = {name: dict.fromkeys(keys, PLACEHOLDER_SECRET) for name, keys in instructed.items()}
    overlap = set(made) & (set(rendered_secrets(rendered)) | set(operator_secrets(rendered)))
    assert not overlap, f"{rendered.case}: instructions create secrets that exist: {overlap}"
    return rendered_secrets(rendered) | operator_secrets(rendered) | made


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in rendered.docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


@dataclass(frozen=True)
class SecretRef:
    where: str
    name: str
    key: str | None  # None: the whole Secret
    optional: bool


def secret_refs(rendered: Rendered) -> Iterator[SecretRef]:
    for where, pod in pod_specs(rendered):
        for pull in pod.get("imagePullSecrets", []):
            yield SecretRef(where, pull["name"], ".dockerconfigjson", False)
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                source = volume["secret"]
                keys = [i["key"] for i in source.get("items", [])] or [None]
                for key in keys:
                    yield SecretRef(where, source["secretName"], key, source.get("optional", False))
        for container in pod["containers"]:
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield SecretRef(where, ref["name"], ref["key"], ref.get("optional", False))
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    ref = source["secretRef"]
                    yield SecretRef(where, ref["name"], None, ref.get("optional", False))
    for auth in rendered.of("TriggerAuthentication"):
        for ref in auth["spec"].get("secretTargetRef", []):
            yield SecretRef(
                f"TriggerAuthentication/{auth['metadata']['name']}", ref["name"], ref["key"], False
            )


def test_references_resolve(rendered: Rendered) -> None:
    """Following the written instructions, every Secret, ConfigMap, ServiceAccount, claim and
    target a pod or operator object names exists; and every instructed Secret is used."""
    instructed = all_instructions(rendered)
    secrets = cluster_secrets(rendered, instructed)
    # cert-manager writes an Ingress's TLS secret when the Ingress asks it to.
    for ingress in rendered.of("Ingress"):
        if any(
            a.startswith("cert-manager.io/") for a in ingress["metadata"].get("annotations", {})
        ):
            for tls in ingress["spec"]["tls"]:
                secrets[tls["secretName"]] = {"tls.crt": "", "tls.key": ""}
    used: set[tuple[str, str | None]] = set()
    for ref in secret_refs(rendered):
        used.add((ref.name, ref.key))
        if ref.optional:
            continue
        assert ref.name in secrets, f"{rendered.case}: {ref.where} needs Secret {ref.name}"
        if ref.key is not None:
            assert ref.key in secrets[ref.name], (
                f"{rendered.case}: {ref.where}: {ref.name}/{ref.key}"
            )
    for name, keys in instructed.items():
        for key in keys:
            assert (name, key) in used, f"{rendered.case}: instructed {name}/{key} is never read"

    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in rendered.of("ConfigMap")}
    accounts = rendered.names("ServiceAccount")
    claims = rendered.names("PersistentVolumeClaim")
    for where, pod in pod_specs(rendered):
        account = pod.get("serviceAccountName")
        if account is not None:
            assert account in accounts, f"{rendered.case}: {where}: ServiceAccount {account}"
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, where
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, where
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, where
    for auth in rendered.of("TriggerAuthentication"):
        for ref in auth["spec"].get("configMapTargetRef", []):
            assert ref["key"] in configmaps.get(ref["name"], {}), ref
    for scaled in rendered.of("ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]
        rendered.one(target["kind"], target["name"])
        for trigger in scaled["spec"]["triggers"]:
            if "authenticationRef" in trigger:
                rendered.one("TriggerAuthentication", trigger["authenticationRef"]["name"])
    for hpa in rendered.of("HorizontalPodAutoscaler"):
        rendered.one(hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
    for ingress in rendered.of("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = rendered.one("Service", backend["name"])
                ports = {p.get("name") for p in service["spec"]["ports"]}
                assert backend["port"].get("name") in ports, backend
    # Services select pods; ServiceMonitors select Services and name one of their ports.
    templates = [
        d["spec"]["template"] for d in rendered.docs if d["kind"] in {"Deployment", "StatefulSet"}
    ]
    for service in rendered.of("Service"):
        selector = service["spec"]["selector"].items()
        (template,) = [t for t in templates if selector <= t["metadata"]["labels"].items()]
        container_ports = {
            p.get("name") for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, service["metadata"]["name"]
    for monitor in rendered.of("ServiceMonitor"):
        labels = monitor["spec"]["selector"]["matchLabels"].items()
        (service,) = [
            s for s in rendered.of("Service") if labels <= s["metadata"]["labels"].items()
        ]
        names = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= names


def test_namespaced_objects_are_in_the_overlay_namespace(rendered: Rendered) -> None:
    for doc in rendered.docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == rendered.namespace, doc["metadata"]


# --- the processes' settings, as the instructions leave them ----------------------------------


def containers(rendered: Rendered) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """process (api, worker) -> (pod spec, container)."""
    found = {}
    for _, pod in pod_specs(rendered):
        for container in pod["containers"]:
            command = container.get("command", [])
            if command[:2] == ["python", "-m"]:
                process = {
                    "producer_api": "api",
                    "processors": "worker",
                    "processors.webhooks": "webhooks",
                }[command[2]]
                assert process not in found, f"two {process} workloads"
                found[process] = (pod, container)
    assert set(found) == {"api", "worker", "webhooks"}
    return found


def container_env(
    rendered: Rendered, container: dict[str, Any], secrets: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The environment the container starts with (Kubernetes' precedence: env over envFrom)."""
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in rendered.of("ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= configmaps[source["configMapRef"]["name"]]
        else:
            env |= secrets.get(source["secretRef"]["name"], {})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        if value is not None:
            env[var["name"]] = value
        else:
            assert ref.get("optional"), f"{rendered.case}: {var['name']} has no value"
    return env


def settings_variants(rendered: Rendered) -> Iterator[tuple[str, dict[str, set[str]]]]:
    """The ways to follow the instructions: all of them, and each without one Secret whose
    every use is optional (e.g. production's S3 keys, left out with IRSA)."""
    instructed = all_instructions(rendered)
    yield "all instructed secrets", instructed
    refs = list(secret_refs(rendered))
    for name in instructed:
        if all(r.optional for r in refs if r.name == name):
            yield f"without {name}", {k: v for k, v in instructed.items() if k != name}


def test_instructions_give_settings_the_processes_accept(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap plus the Secrets the overlay's comments say to create build ApiSettings
    and WorkerSettings: exactly one token key source, SASL credentials, known names only."""
    found = containers(rendered)
    for variant, instructed in settings_variants(rendered):
        secrets = cluster_secrets(rendered, instructed)
        for process, (pod, container) in found.items():
            env = container_env(rendered, container, secrets)
            # The shared ConfigMap may hold either process's names; a container's own env
            # only its process's.
            assert not unknown_names(set(env), "both"), f"{rendered.case}, {variant}"
            own = {e["name"] for e in container.get("env", [])}
            assert not unknown_names(own, process), f"{rendered.case}, {variant}"
            try:
                built = build_settings(PROCESS_SETTINGS[process], env, monkeypatch)
            except ValidationError as exc:
                pytest.fail(
                    f"{rendered.case}, {variant}: the {process} refuses its settings: {exc}"
                )
            assert built.kafka.security.protocol == "SASL_SSL"
            if process == "api":
                assert built.auth.mode == "jwt"
                assert built.api.host == ALL_INTERFACES
                assert pod["terminationGracePeriodSeconds"] > built.api.shutdown_grace_s
            elif process == "worker":
                assert built.worker.web_host == ALL_INTERFACES
                assert built.worker.store.startswith("rocksdb://")
                assert pod["terminationGracePeriodSeconds"] > built.worker.shutdown_grace_s
            else:
                assert built.webhooks.web_host == ALL_INTERFACES
                assert built.webhooks.secret is not None  # it refuses to start without one
                (port,) = container["ports"]
                assert port["containerPort"] == built.webhooks.web_port


@pytest.mark.parametrize("rendered", ["production", "production+riva"], indirect=True)
def test_production_refuses_the_base_secret_keys(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old production instruction (create medvoice-secrets with the keys of the base's
    secretGenerator) sets an HS256 secret beside the JWKS URL: the API must refuse it, which
    is why the instructions now name their keys."""
    base = load(K8S / "base" / "kustomization.yaml")
    (generator,) = [g for g in base["secretGenerator"] if g["name"] == "medvoice-secrets"]
    keys = {lit.partition("=")[0] for lit in generator["literals"]}
    secrets = cluster_secrets(rendered, {"medvoice-secrets": keys})
    _, container = containers(rendered)["api"]
    env = container_env(rendered, container, secrets)
    with pytest.raises(ValidationError, match="exactly one of"):
        build_settings(ApiSettings, env, monkeypatch)
    assert "MEDVOICE_AUTH__HS256_SECRET" not in all_instructions(rendered).get(
        "medvoice-secrets", set()
    )


def check_workload(rendered: Rendered, pod: dict[str, Any], container: dict[str, Any]) -> None:
    name = f"{rendered.case}: {container['name']}"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["automountServiceAccountToken"] is False, name
    assert pod["serviceAccountName"] in rendered.names("ServiceAccount"), name
    assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
    assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be an emptyDir"
    assert container["resources"]["requests"], name
    assert container["resources"]["limits"]["memory"], name


def test_workloads(rendered: Rendered) -> None:
    found = containers(rendered)
    for pod, container in found.values():
        check_workload(rendered, pod, container)
    # One ServiceAccount per process, so each may get its own cloud identity (IRSA).
    accounts = [pod["serviceAccountName"] for pod, _ in found.values()]
    assert len(set(accounts)) == len(accounts) == 3
    worker = rendered.one("StatefulSet", "medvoice-worker")
    (claim,) = worker["spec"]["volumeClaimTemplates"]
    config = medvoice_config(rendered)
    mounts = {m["name"]: m["mountPath"] for m in found["worker"][1]["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == config["MEDVOICE_WORKER__DATA_DIR"]
    # The Kafka CA the settings name is the Strimzi cluster CA, mounted where they say.
    (kafka,) = rendered.of("Kafka")
    ca_file = Path(config["MEDVOICE_KAFKA__SECURITY__CA_FILE"])
    for pod, container in found.values():
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = {v["name"]: v for v in pod["volumes"]}[mounts[str(ca_file.parent)]]
        assert volume["secret"]["secretName"] == f"{kafka['metadata']['name']}-cluster-ca-cert"
        assert {"key": "ca.crt", "path": ca_file.name} in volume["secret"]["items"]


# --- replicas: one owner each -----------------------------------------------------------------


def min_replicas(rendered: Rendered, kind: str, name: str) -> int:
    for hpa in rendered.of("HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": kind, "name": name}:
            return int(hpa["spec"].get("minReplicas", 1))
    for scaled in rendered.of("ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]
        if (target.get("kind"), target["name"]) == (kind, name):
            return int(scaled["spec"].get("minReplicaCount", 0))
    return int(rendered.one(kind, name)["spec"].get("replicas", 1))


def test_autoscalers_own_the_replicas(rendered: Rendered) -> None:
    api = rendered.one("Deployment", "medvoice-api")
    worker = rendered.one("StatefulSet", "medvoice-worker")
    assert "replicas" not in api["spec"], "the HPA owns the API's replicas"
    assert "replicas" not in worker["spec"], "KEDA owns the workers' replicas"
    hpa_targets = [
        h["spec"]["scaleTargetRef"]["name"] for h in rendered.of("HorizontalPodAutoscaler")
    ]
    assert hpa_targets == ["medvoice-api"], "KEDA makes the workers' HPA; two would fight"
    (scaled,) = rendered.of("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "medvoice-worker"


def test_disruption_budgets_allow_a_drain(rendered: Rendered) -> None:
    """A PDB must let at least one pod go at the workload's smallest size, or it blocks every
    node drain (dev's one API pod with minAvailable 1 did)."""
    workloads = [*rendered.of("Deployment"), *rendered.of("StatefulSet")]
    pdbs = rendered.of("PodDisruptionBudget")
    assert pdbs
    for pdb in pdbs:
        selector = pdb["spec"]["selector"]["matchLabels"]
        (target,) = [
            w
            for w in workloads
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        smallest = min_replicas(rendered, target["kind"], target["metadata"]["name"])
        if "minAvailable" in pdb["spec"]:
            assert int(pdb["spec"]["minAvailable"]) < smallest, pdb["metadata"]["name"]
        else:
            assert int(pdb["spec"]["maxUnavailable"]) >= 1, pdb["metadata"]["name"]


# --- Kafka: cluster, topics, principals, KEDA's trigger ---------------------------------------


def medvoice_config(rendered: Rendered) -> dict[str, str]:
    _, container = containers(rendered)["worker"]
    (source,) = [s for s in container["envFrom"] if "configMapRef" in s]
    config: dict[str, str] = rendered.one("ConfigMap", source["configMapRef"]["name"])["data"]
    return config


def process_settings(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> tuple[ApiSettings, WorkerSettings]:
    secrets = cluster_secrets(rendered, all_instructions(rendered))
    found = containers(rendered)
    api_env = container_env(rendered, found["api"][1], secrets)
    worker_env = container_env(rendered, found["worker"][1], secrets)
    api = build_settings(ApiSettings, api_env, monkeypatch)
    worker = build_settings(WorkerSettings, worker_env, monkeypatch)
    return api, worker


def webhook_settings(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> WebhookSettings:
    secrets = cluster_secrets(rendered, all_instructions(rendered))
    env = container_env(rendered, containers(rendered)["webhooks"][1], secrets)
    built: WebhookSettings = build_settings(WebhookSettings, env, monkeypatch)
    return built


def test_kafka_cluster(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    api, worker = process_settings(rendered, monkeypatch)
    hooks = webhook_settings(rendered, monkeypatch)
    (kafka,) = rendered.of("Kafka")
    assert kafka["spec"]["kafka"]["version"].startswith("4.1.")  # needs Strimzi >= 0.48
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"]["type"] == "scram-sha-512"
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    for settings in (api, worker, hooks):
        assert settings.kafka.bootstrap == bootstrap
        assert settings.kafka.security.sasl_mechanism == "SCRAM-SHA-512"
    (pool,) = rendered.of("KafkaNodePool")
    config = kafka["spec"]["kafka"]["config"]
    assert config["min.insync.replicas"] <= worker.kafka.replication <= pool["spec"]["replicas"]
    assert config["auto.create.topics.enable"] is False
    # KEDA's operator (namespace keda) must get through the listener's network policy.
    peers = listener["networkPolicyPeers"]
    assert {"podSelector": {"matchLabels": {"medvoice.io/kafka-client": "true"}}} in peers
    assert any(
        p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "keda"
        for p in peers
    )
    for doc in (
        rendered.one("Deployment", "medvoice-api"),
        rendered.one("StatefulSet", "medvoice-worker"),
        rendered.one("Deployment", "medvoice-webhooks"),
    ):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert labels.get("medvoice.io/kafka-client") == "true", doc["metadata"]["name"]


def test_topics_match_the_code(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    """The KafkaTopics are what medvoice_common.kafka would create with these settings."""
    _, worker = process_settings(rendered, monkeypatch)
    topics = {t["spec"]["topicName"]: t["spec"] for t in rendered.of("KafkaTopic")}
    specs = {s.name: s for s in topic_specs(worker)}
    assert set(topics) == set(specs)
    for name, spec in specs.items():
        topic = topics[name]
        assert topic["partitions"] == spec.num_partitions == worker.kafka.partitions, name
        assert topic["replicas"] == spec.replication_factor == worker.kafka.replication, name
        configs = {k: str(v) for k, v in topic.get("config", {}).items()}
        for key, value in spec.topic_configs.items():
            assert configs.get(key) == value, f"{rendered.case}: {name} {key}"
    assert topics[worker.topics.dlq]["config"]["retention.ms"] == -1


def acl_table(user: dict[str, Any]) -> dict[tuple[str, str | None, str | None], set[str]]:
    table: dict[tuple[str, str | None, str | None], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        r = acl["resource"]
        pattern = None if r["type"] == "cluster" else r.get("patternType", "literal")
        key = (r["type"], r.get("name"), pattern)
        assert key not in table, f"{user['metadata']['name']}: {key} twice"
        table[key] = set(acl["operations"])
    return table


def test_kafka_principals_least_privilege(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One principal per process, each with exactly what its code does (see the table in
    k8s/base/kafka/kafkauser.yaml): the API never reads the work queue or joins a group;
    the webhook deliverer only reads task.status in its own group."""
    api, worker = process_settings(rendered, monkeypatch)
    hooks = webhook_settings(rendered, monkeypatch)
    assert hooks.topics == worker.topics
    t, app = worker.topics, worker.faust_app_id
    assert api.topics == t
    expected = {
        api.kafka.security.sasl_username: {
            ("topic", t.submitted, "literal"): {"Write", "Describe"},
            ("topic", t.status, "literal"): {"Write", "Read", "Describe"},
            ("topic", t.ready, "literal"): {"Describe"},
            ("topic", t.retry, "literal"): {"Describe"},
            ("topic", t.dlq, "literal"): {"Describe"},
            ("cluster", None, None): {"IdempotentWrite"},
        },
        worker.kafka.security.sasl_username: {
            ("topic", t.submitted, "literal"): {"Read", "Write", "Describe"},
            ("topic", t.retry, "literal"): {"Read", "Write", "Describe"},
            ("topic", t.ready, "literal"): {"Write", "Describe"},
            ("topic", t.status, "literal"): {"Write", "Describe"},
            ("topic", t.dlq, "literal"): {"Read", "Write", "Describe"},
            ("topic", app, "prefix"): {"Read", "Write", "Create", "Describe"},
            ("group", app, "prefix"): {"Read", "Describe"},
            ("cluster", None, None): {"IdempotentWrite"},
        },
        hooks.kafka.security.sasl_username: {
            ("topic", t.status, "literal"): {"Read", "Describe"},
            ("group", hooks.group_id, "literal"): {"Read", "Describe"},
        },
        keda_username(rendered): {
            ("topic", t.submitted, "literal"): {"Describe"},
            ("group", app, "literal"): {"Describe"},
        },
    }
    users = {u["metadata"]["name"]: u for u in rendered.of("KafkaUser")}
    assert set(users) == set(expected) and len(expected) == 4, "one per process, one for KEDA"
    for name, table in expected.items():
        assert acl_table(users[name]) == table, f"{rendered.case}: {name}"
        assert users[name]["spec"]["authentication"]["type"] == "scram-sha-512"
    # Each process logs in as its own user, with the password Strimzi wrote for that user.
    found = containers(rendered)
    for process, settings in (("api", api), ("worker", worker), ("webhooks", hooks)):
        env = {e["name"]: e for e in found[process][1]["env"]}
        ref = env["MEDVOICE_KAFKA__SECURITY__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (settings.kafka.security.sasl_username, "password")
    assert api.kafka.security.sasl_username != worker.kafka.security.sasl_username


def keda_username(rendered: Rendered) -> str:
    (auth,) = rendered.of("TriggerAuthentication")
    (ref,) = [r for r in auth["spec"]["configMapTargetRef"] if r["parameter"] == "username"]
    username: str = rendered.one("ConfigMap", ref["name"])["data"][ref["key"]]
    return username


def test_keda_scales_the_workers_on_their_lag(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, worker = process_settings(rendered, monkeypatch)
    (scaled,) = rendered.of("ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "medvoice-worker",
    }
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["consumerGroup"] == worker.faust_app_id  # Faust's group is its app id
    assert meta["topic"] == worker.topics.submitted
    (submitted,) = [t for t in rendered.of("KafkaTopic") if t["spec"]["topicName"] == meta["topic"]]
    assert spec["maxReplicaCount"] <= submitted["spec"]["partitions"]
    assert spec["minReplicaCount"] >= 1
    # KEDA's operator runs in its own namespace: the bootstrap must name this one.
    (kafka,) = rendered.of("Kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    bootstrap = (
        f"{kafka['metadata']['name']}-kafka-bootstrap.{rendered.namespace}.svc:{listener['port']}"
    )
    assert meta["bootstrapServers"] == bootstrap
    assert (meta["sasl"], meta["tls"]) == ("scram_sha512", "enable")
    assert meta["offsetResetPolicy"] == "earliest"  # as the workers' consumer
    # Kafka 4 answers only request versions of Kafka 2.1 or later (KIP-896).
    assert tuple(int(x) for x in meta["version"].split(".")) >= (2, 1, 0)
    (auth,) = rendered.of("TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    params = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert (params["password"]["name"], params["password"]["key"]) == (
        keda_username(rendered),
        "password",
    )
    assert params["ca"]["name"] == f"{kafka['metadata']['name']}-cluster-ca-cert"


# --- per overlay ------------------------------------------------------------------------------


@pytest.mark.parametrize("rendered", ["production", "production+riva"], indirect=True)
def test_production(rendered: Rendered) -> None:
    config = medvoice_config(rendered)
    assert config["MEDVOICE_S3__SSE"] == "aws:kms"
    assert config["MEDVOICE_S3__SSE_KMS_KEY_ID"].startswith("arn:aws:kms:")
    assert config["MEDVOICE_AUTH__JWKS_URL"].startswith("https://")
    assert not rendered.of("Secret"), "production credentials are created out of band"
    for account in rendered.of("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
        if account["metadata"]["name"] == "medvoice-webhooks":  # uses no AWS service
            assert "annotations" not in account["metadata"]
            continue
        arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn), arn
    (ingress,) = rendered.of("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"]
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": "medvoice-api", "port": {"name": "http"}}
    # Uploads pass through the ingress: its body limit must be over the API's.
    body = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(body.removesuffix("m")) * 1024 * 1024 > ApiOptions().max_upload_bytes


@pytest.mark.parametrize("rendered", ["dev", "dev+riva"], indirect=True)
def test_dev(rendered: Rendered) -> None:
    assert not all_instructions(rendered).get("medvoice-secrets"), "dev creates nothing"
    assert "medvoice-secrets" in rendered.names("Secret")
    config = medvoice_config(rendered)
    assert config["MEDVOICE_KAFKA__REPLICATION"] == "1"
    assert config["MEDVOICE_S3__ENDPOINT_URL"] == "http://minio:9000"
    assert "MEDVOICE_AUTH__JWKS_URL" not in config  # the placeholder HS256 secret is the source


@pytest.mark.parametrize("rendered", ["dev+riva", "production+riva"], indirect=True)
def test_riva_component(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    _, worker = process_settings(rendered, monkeypatch)
    assert worker.asr.backend == "riva"
    host, _, port = worker.riva.uri.rpartition(":")
    service = rendered.one("Service", host)
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    riva = rendered.one("Deployment", "riva")
    (server,) = riva["spec"]["template"]["spec"]["containers"]
    assert int(server["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    pulls = {p["name"] for p in riva["spec"]["template"]["spec"]["imagePullSecrets"]}
    assert pulls <= set(all_instructions(rendered)), "the pull secret's command is documented"
