"""What the deployment tests share: paths, YAML, settings names, kustomize rendering.

Imported by the test modules beside it (pytest puts this folder on ``sys.path``).
"""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from medvoice_common.env_check import env_names, known_names
from processors.settings import WorkerSettings
from processors.webhooks.settings import WebhookSettings
from producer_api.settings import ApiSettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S = ROOT / "k8s"
DEV_SECRETS = ROOT / "deploy" / "compose" / "dev-secrets"
# Where tools/ensure_system_deps.sh puts kustomize when it builds it with Go.
LOCAL_KUSTOMIZE = ROOT / "build" / "tools" / "bin" / "kustomize"
RENDER_TIMEOUT_S = 120  # kustomize renders these in about a second
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - in a container the ports must be reachable from outside
# A value for any secret the tests stand in for: long enough for the API's HS256 minimum.
PLACEHOLDER_SECRET = "placeholder-secret-of-at-least-32-bytes!"

API_NAMES = frozenset(env_names(ApiSettings))
WORKER_NAMES = frozenset(env_names(WorkerSettings))
WEBHOOK_NAMES = frozenset(env_names(WebhookSettings))
PROCESS_SETTINGS: dict[str, type[BaseModel]] = {
    "api": ApiSettings,
    "worker": WorkerSettings,
    "webhooks": WebhookSettings,
}


def unknown_names(names: set[str], process: str) -> set[str]:
    """The MEDVOICE_* names in ``names`` that ``process`` (api, worker, webhooks, or both: any
    of the three) does not read.

    Stricter than the processes' own start-up check (medvoice_common.env_check), which accepts
    any name some MedVoice process reads: here a worker-only name given to the API is an error.
    """
    names = {n for n in names if n.startswith("MEDVOICE_")}
    allowed = {
        "api": API_NAMES,
        "worker": WORKER_NAMES,
        "webhooks": WEBHOOK_NAMES,
        "both": API_NAMES | WORKER_NAMES | WEBHOOK_NAMES,
        "any": known_names(),  # compose's own MEDVOICE_SECRETS_DIR, MEDVOICE_IMAGE too
    }
    return names - allowed[process]


def build_settings(
    settings: type[BaseModel], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Construct ``settings`` from exactly ``env`` (nothing from the real environment)."""
    for name in list(os.environ):
        if name.upper().startswith("MEDVOICE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings()


def load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def load(path: Path) -> Any:
    docs = load_all(path)
    assert len(docs) == 1, f"{path}: expected one YAML document"
    return docs[0]


def kustomize_command() -> list[str]:
    """``kustomize build``, ``kubectl kustomize`` or the one ensure_system_deps.sh built.

    Never a skip: without one the rendered manifests would go unchecked, so the tests fail
    and say how to get it.
    """
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        probe = subprocess.run(
            ["kubectl", "kustomize", "--help"], capture_output=True, check=False, timeout=60
        )
        if probe.returncode == 0:
            return ["kubectl", "kustomize"]
    if LOCAL_KUSTOMIZE.is_file():
        return [str(LOCAL_KUSTOMIZE), "build"]
    pytest.fail(
        "neither kustomize nor kubectl is installed, so k8s/ cannot be rendered and checked: "
        "run `tools/ensure_system_deps.sh test` (make test does; with Go it builds kustomize "
        f"into {LOCAL_KUSTOMIZE.parent}), or install kubectl"
    )


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build directory`` writes."""
    out = subprocess.run(
        [*kustomize_command(), str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=RENDER_TIMEOUT_S,
    )
    assert out.returncode == 0, f"kustomize build {directory} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc is not None]
