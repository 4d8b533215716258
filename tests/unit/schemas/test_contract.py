"""The published event contract: committed JSON Schemas and AsyncAPI document, kept honest.

- the committed schemas and docs/asyncapi.yaml are what the code generates (not stale);
- docs/asyncapi.yaml is a valid AsyncAPI 3.0.0 document (the spec's own JSON Schema);
- the current events are backward compatible with the schemas released with their
  ``schema_version`` (schemas/compat.py), and that check catches each kind of break.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, Field

from schemas.compat import breaking_changes
from schemas.events import SCHEMA_VERSION
from schemas.export import MODELS, released_dir, schema_text
from tools import asyncapi

ROOT = Path(__file__).resolve().parents[3]
JSON_DIR = ROOT / "schemas" / "json"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
ASYNCAPI_SPEC = ROOT / "tests" / "contracts" / "asyncapi-3.0.0.schema.json"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_committed_schema_is_what_the_code_generates(model: type[BaseModel]) -> None:
    committed = JSON_DIR / f"{model.__name__}.schema.json"
    assert committed.is_file(), "run `make schemas` and commit schemas/json/"
    assert committed.read_text() == schema_text(model), "stale: run `make schemas`"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_current_events_can_be_read_by_readers_of_the_release(model: type[BaseModel]) -> None:
    released_file = released_dir(JSON_DIR, SCHEMA_VERSION) / f"{model.__name__}.schema.json"
    assert released_file.is_file(), (
        f"no released schema for schema_version {SCHEMA_VERSION}: `make schemas` writes it"
    )
    released = json.loads(released_file.read_text())
    assert breaking_changes(released, model.model_json_schema()) == []


def test_asyncapi_document_is_not_stale() -> None:
    from importlib.metadata import version

    assert ASYNCAPI.read_text() == asyncapi.render(version("medvoice-pipeline")), (
        "docs/asyncapi.yaml is stale: run `make schemas`"
    )


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    spec = json.loads(ASYNCAPI_SPEC.read_text())
    document = yaml.safe_load(ASYNCAPI.read_text())
    errors = list(jsonschema.Draft7Validator(spec).iter_errors(document))
    assert errors == [], [f"{list(e.path)}: {e.message[:200]}" for e in errors]
    # The validator is not vacuous: a 2.x-style operation is refused.
    broken = {**document, "operations": {"x": {"action": "publish", "channel": {}}}}
    assert list(jsonschema.Draft7Validator(spec).iter_errors(broken))


def test_asyncapi_describes_every_topic_with_its_key_and_guarantees() -> None:
    document = yaml.safe_load(ASYNCAPI.read_text())
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {
        "audio.submitted",
        "audio.submitted.retry",
        "transcript.ready",
        "task.status",
        "audio.submitted.dlq",
    }
    status = next(c for c in document["channels"].values() if c["address"] == "task.status")
    assert status["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] == ["compact"]
    for message in document["components"]["messages"].values():
        assert message["bindings"]["kafka"]["key"]["format"] == "uuid"
    ready = document["components"]["messages"]["TranscriptReady"]
    assert "ce_id" in ready["headers"]["required"]
    assert "at-least-once" in document["info"]["description"]


# --- the compatibility rules themselves, on small models ------------------------------------


class Summary(BaseModel):
    words: int


class Released(BaseModel):
    task_id: str
    status: str = Field(json_schema_extra={"enum": ["queued", "completed"]})
    duration_s: float
    note: str | None = None
    summary: Summary | None = None
    at: datetime


def _changes(current: type[BaseModel]) -> list[str]:
    return breaking_changes(Released.model_json_schema(), current.model_json_schema())


def test_adding_an_optional_field_or_rewording_is_compatible() -> None:
    class RicherSummary(BaseModel):
        words: int
        speakers: int = 1

    class Current(Released):
        language: str = "en"
        duration_s: float = Field(description="seconds of audio")
        summary: RicherSummary | None = None  # type: ignore[assignment]

    assert _changes(Current) == []


def test_each_kind_of_break_is_caught() -> None:
    class Removed(BaseModel):
        task_id: str
        status: str = Field(json_schema_extra={"enum": ["queued", "completed"]})
        note: str | None = None
        summary: Summary | None = None
        at: datetime

    class Retyped(Released):
        duration_s: str  # type: ignore[assignment]

    class NewRequired(Released):
        language: str

    class NowRequired(Released):
        note: str

    class FewerValues(Released):
        status: str = Field(json_schema_extra={"enum": ["queued"]})

    class NestedSummary(BaseModel):
        words: str

    class NestedRetyped(Released):
        summary: NestedSummary | None = None  # type: ignore[assignment]

    cases: dict[type[BaseModel], str] = {
        Removed: "duration_s: removed",
        Retyped: "duration_s: type changed",
        NewRequired: "language: new and required",
        NowRequired: "note: was optional, is now required",
        FewerValues: "status: values removed",
        NestedRetyped: "summary.words: type changed",
    }
    for model, expected in cases.items():
        problems: Any = _changes(model)
        assert any(expected in p for p in problems), (model.__name__, problems)
