"""The event contracts: round trips, validation, JSON Schema export."""

import json
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas import (
    AudioSubmitted,
    TaskStatus,
    TaskStatusChanged,
    Topics,
    TranscriptReady,
    audio_object_key,
)
from schemas.export import MODELS, export


def submitted(**overrides: object) -> AudioSubmitted:
    fields: dict[str, object] = {
        "task_id": uuid.uuid4(),
        "user_id": "dr_a-1",
        "file_id": "f1",
        "file_extension": "m4a",
        "object_key": "audio/dr_a-1/f1.m4a",
    }
    return AudioSubmitted.model_validate({**fields, **overrides})


def test_event_round_trips_through_json_with_the_common_fields() -> None:
    event = submitted(file_name="visit.m4a")
    decoded = json.loads(event.to_bytes())
    assert decoded["event_type"] == "AudioSubmitted"
    assert decoded["schema_version"] == 1
    assert decoded["occurred_at"].endswith("Z")
    assert set(decoded) >= {"event_id", "task_id", "user_id", "occurred_at", "schema_version"}
    assert AudioSubmitted.model_validate_json(event.to_bytes()) == event


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    data = json.loads(submitted().to_bytes())
    data["added_in_a_later_version"] = {"x": 1}
    assert AudioSubmitted.model_validate(data).file_id == "f1"


@pytest.mark.parametrize("user_id", ["../x", "a/b", "", "x" * 65, "é", "a b", "a\x00"])
def test_ids_outside_the_pattern_are_refused(user_id: str) -> None:
    with pytest.raises(ValidationError):
        submitted(user_id=user_id)


@pytest.mark.parametrize("ext", ["exe", "M4A ", "", "mp4"])
def test_extensions_outside_the_allowlist_are_refused(ext: str) -> None:
    with pytest.raises(ValidationError):
        submitted(file_extension=ext)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError):
        submitted(occurred_at="2026-01-01T10:00:00")


def test_inline_text_is_bounded() -> None:
    base = {
        "task_id": uuid.uuid4(),
        "user_id": "u",
        "file_id": "f",
        "transcript_uri": "s3://b/k",
        "language": "en",
        "duration_s": 1.0,
        "word_count": 1,
        "backend": "whisper",
        "model": "m",
        "submitted_at": "2026-01-01T10:00:00Z",
    }
    TranscriptReady.model_validate({**base, "text": "a" * 200_000})
    with pytest.raises(ValidationError):
        TranscriptReady.model_validate({**base, "text": "a" * 200_001})


def test_status_ranks_never_go_backwards() -> None:
    assert TaskStatus.QUEUED.rank < TaskStatus.PROCESSING.rank < TaskStatus.COMPLETED.rank
    assert TaskStatus.FAILED.is_final and TaskStatus.COMPLETED.is_final
    assert not TaskStatus.PROCESSING.is_final


def test_topics_and_keys() -> None:
    topics = Topics.with_prefix("staging.")
    assert topics.submitted == "staging.audio.submitted"
    assert topics.dlq == "staging.audio.submitted.dlq"
    assert audio_object_key("u", "f", "m4a") == "audio/u/f.m4a"


def test_json_schema_export_writes_every_model(tmp_path: Path) -> None:
    written = export(tmp_path)
    assert {p.name for p in written} == {f"{m.__name__}.schema.json" for m in MODELS}
    schema = json.loads((tmp_path / "TaskStatusChanged.schema.json").read_text())
    assert "status" in schema["required"]
    assert TaskStatusChanged.model_json_schema()["properties"]["replay"]["default"] == 0
