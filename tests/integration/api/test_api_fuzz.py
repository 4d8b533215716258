"""Property-based fuzzing of the running API from its own OpenAPI schema (schemathesis).

No 5xx (the documented dispatch failure aside: the broker is up, so none is expected), every
status documented, every documented body conforming to its schema.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.processes import ManagedProcess
from tests.fixtures.stack import StackConfig, start_api

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 40  # per operation and phase: about a minute for the whole schema
RUN_TIMEOUT_S = 240  # far over a normal run; a hang fails instead of blocking the suite
# schemathesis's own pytest loader (from_fixture) breaks on pytest 9: its CLI is the stable API.
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


@pytest.fixture(scope="module")
def fuzzed_api(
    kafka_broker: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[StackConfig, str]]:
    cfg = StackConfig(kafka_broker.bootstrap, s3_endpoint, tmp_path_factory.mktemp("fuzz"))
    proc: ManagedProcess
    proc, url = start_api(cfg, MEDVOICE_API__MAX_UPLOAD_BYTES=str(256 * 1024))
    yield cfg, url
    proc.terminate()


def test_api_conforms_to_its_schema(fuzzed_api: tuple[StackConfig, str], tmp_path: Path) -> None:
    cfg, url = fuzzed_api
    token = cfg.token("fuzz-admin", admin=True)
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{url}/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "20240601",  # the same examples every run: a failure is reproducible
            "--header",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "30",
            "--workers",
            "2",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert "/process_audio_v2/{user_id}" in output and "/tasks/{task_id}" in output
