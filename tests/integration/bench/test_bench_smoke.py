"""The benchmark harness in its quick mode, so it cannot rot (asserts shape, never speed)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.kafka_broker import KafkaBroker

pytestmark = pytest.mark.integration
QUICK_TIMEOUT_S = 240  # a busy 2-core machine; the quick run takes under a minute when idle


def test_quick_bench_writes_report(
    kafka_broker: KafkaBroker, s3_endpoint: str, tmp_path: Path
) -> None:
    """``python -m bench.run --quick`` writes REPORT.md, a plot and sane non-zero figures."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable, "-m", "bench.run", "--quick", "--out", str(out),
            "--bootstrap", kafka_broker.bootstrap, "--s3-url", s3_endpoint,
        ],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (out / "REPORT.md").read_text()
    for heading in (
        "## Headline",
        "## 1. Submission path",
        "## 2. Pipeline overhead",
        "## 4. Memory",
    ):
        assert heading in report
    assert (out / "latency_vs_concurrency.png").stat().st_size > 1000
    rows = [line for line in report.splitlines() if re.match(r"^\| (medvoice|bare|celery)", line)]
    assert len(rows) >= 4  # one row per submission target
    results = json.loads((out / "raw" / "results.json").read_text())
    sub = results["submission"]
    for target in sub["targets"].values():
        level = next(iter(target["levels"].values()))
        assert level["rps"]["median"] > 0
        assert 0 < level["p50_ms"]["median"] <= level["p99_ms"]["median"]
    assert sub["lost"]["acknowledged"] > 0
    assert sub["lost"]["lost"] == 0
    pipe = results["pipeline"]
    assert pipe["direct"]["audio_per_wall"]["median"] > 0
    assert pipe["pipeline"]["audio_per_wall"]["median"] > 0
    assert pipe["pipeline"]["failed"] == 0
    assert pipe["overhead"]["tasks"] > 0
    assert pipe["worker_memory"]["after_load"]["VmHWM"] > 0
    parity = pipe["parity"]
    assert parity["clips"] == len(pipe["clips"]) and parity["reps"] >= 1
    for clip in parity["per_clip"]:
        assert clip["script_words"] > 0
        for rep in clip["reps"]:
            assert rep["engine_text"] and rep["pipeline_texts"] == 1, (clip["clip"], rep)
            assert 0 <= rep["engine_wer"] and 0 <= rep["pipeline_wer"]
    assert "| pipeline WER = engine WER on every clip | equal on " in report
    assert "| clip | audio s | script words | engine WER | pipeline WER |" in report
    assert sub["api_memory"]["after_load"]["VmHWM"] > 0
