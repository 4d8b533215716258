"""The event contract as an AsyncAPI 3.0 document, generated from the code.

    python -m tools.asyncapi docs/asyncapi.yaml    # write it (``make schemas`` does)
    python -m tools.asyncapi --check docs/asyncapi.yaml   # exit 1 when the file is stale

Everything in it comes from the code that produces the events: the payloads from the
pydantic models (``schemas/``), the topics and their configs from
``medvoice_common.kafka.topic_specs``, the header names from ``processors.records`` and
``medvoice_common.cloudevents``. tests/unit/schemas/test_asyncapi.py fails when the
committed document is stale, and validates it against the AsyncAPI 3.0.0 JSON Schema.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from medvoice_common import cloudevents
from medvoice_common.kafka import topic_specs
from medvoice_common.settings import CommonSettings
from processors import records
from schemas.events import SCHEMA_VERSION, AudioSubmitted, TaskStatusChanged, TranscriptReady

KAFKA_BINDING = "0.5.0"
REF = "#/components/schemas/{model}"

GUARANTEES = """\
Delivery is at-least-once on every topic: a record may be delivered more than once (a worker
that dies after publishing and before committing publishes again on redelivery). Deduplicate
by `task_id` (one transcript per task) or by `event_id` (one record). Every record is keyed
by `task_id`, so the records of one task are in order within a topic; there is no order
across topics. Readers must ignore fields they do not know: adding an optional field keeps
`schema_version`; removing, renaming or retyping one raises it. Payloads carry patient data
(`text`, `file_name`): never put them in logs at INFO or in metric labels."""

HEADER_DOC = {
    records.TRACEPARENT: "W3C trace context of the submission",
    records.ATTEMPT: "delivery attempt of a transient failure, decimal",
    records.NOT_BEFORE_MS: "not to be retried before this epoch time in ms, decimal",
    records.ERROR_CODE: "stable error code of the dead letter",
    records.ERROR_MESSAGE: "message of the dead letter, safe to show the task's owner",
    records.ERROR_CAUSE: "the transient cause behind retries_exhausted",
    records.ORIGIN_TOPIC: "topic the record was first consumed from",
    records.ORIGIN_PARTITION: "its partition there, decimal",
    records.ORIGIN_OFFSET: "its offset there, decimal",
    records.REPLAY: "times an operator replayed the task from the dead letters, decimal",
}


def _headers(names: list[str], required: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name in names:
        doc = cloudevents.HEADER_DOC.get(name) or HEADER_DOC[name]
        props[name] = {"type": "string", "description": doc}
    return {"type": "object", "properties": props, "required": required}


def _topic_binding(spec: Any) -> dict[str, Any]:
    configs = dict(spec.topic_configs)
    topic_config: dict[str, Any] = {}
    if "cleanup.policy" in configs:
        topic_config["cleanup.policy"] = configs["cleanup.policy"].split(",")
    if "retention.ms" in configs:
        topic_config["retention.ms"] = int(configs["retention.ms"])
    binding: dict[str, Any] = {"topic": spec.name, "bindingVersion": KAFKA_BINDING}
    if topic_config:
        binding["topicConfiguration"] = topic_config
    return binding


def document(version: str) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of this code's topics and events."""
    settings = CommonSettings()
    models: list[type[BaseModel]] = [AudioSubmitted, TranscriptReady, TaskStatusChanged]
    _, defs = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(defs["$defs"])
    key = {"type": "string", "format": "uuid", "description": "task_id, UTF-8"}
    ce = list(cloudevents.HEADERS)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    t = settings.topics

    def message(name: str, title: str, payload: Any, headers: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "title": title,
            "contentType": "application/json",
            "headers": headers,
            "payload": payload,
            "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
        }

    event_headers = _headers([*ce, records.TRACEPARENT], required=ce)
    raw = {"type": "string", "format": "binary", "description": "the original record's bytes"}
    dlq_names = [
        records.ERROR_CODE,
        records.ERROR_MESSAGE,
        records.ERROR_CAUSE,
        records.ORIGIN_TOPIC,
        records.ORIGIN_PARTITION,
        records.ORIGIN_OFFSET,
        records.ATTEMPT,
        records.REPLAY,
        records.TRACEPARENT,
    ]
    retry_names = [records.ATTEMPT, records.NOT_BEFORE_MS, records.ORIGIN_TOPIC, records.REPLAY]
    messages = {
        "AudioSubmitted": message(
            "AudioSubmitted",
            "A recording was submitted",
            {"$ref": REF.format(model="AudioSubmitted")},
            event_headers,
        ),
        "TranscriptReady": message(
            "TranscriptReady",
            "A transcript is ready; the full document is in S3",
            {"$ref": REF.format(model="TranscriptReady")},
            event_headers,
        ),
        "TaskStatusChanged": message(
            "TaskStatusChanged",
            "A task changed status",
            {"$ref": REF.format(model="TaskStatusChanged")},
            event_headers,
        ),
        "RetryRecord": message(
            "RetryRecord",
            "An AudioSubmitted record waiting for its backoff (internal to the workers)",
            raw,
            _headers(retry_names, required=[records.ATTEMPT, records.NOT_BEFORE_MS]),
        ),
        "DeadLetter": message(
            "DeadLetter",
            "A poison record or an exhausted task: the original bytes, the error in headers",
            raw,
            _headers(dlq_names, required=[records.ERROR_CODE, records.ORIGIN_TOPIC]),
        ),
    }

    def channel(topic: str, description: str, names: list[str]) -> dict[str, Any]:
        return {
            "address": topic,
            "description": description,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {"kafka": _topic_binding(specs[topic])},
        }

    channels = {
        "audioSubmitted": channel(t.submitted, "The work queue.", ["AudioSubmitted"]),
        "audioSubmittedRetry": channel(t.retry, "Transient failures.", ["RetryRecord"]),
        "transcriptReady": channel(t.ready, "Finished transcripts.", ["TranscriptReady"]),
        "taskStatus": channel(
            t.status,
            "Every status change; compacted: the latest record of each task is kept.",
            ["TaskStatusChanged"],
        ),
        "deadLetters": channel(t.dlq, "Dead letters.", ["DeadLetter"]),
    }

    def operation(action: str, chan: str, summary: str, names: list[str]) -> dict[str, Any]:
        return {
            "action": action,
            "channel": {"$ref": f"#/channels/{chan}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{chan}/messages/{n}"} for n in names],
        }

    operations = {
        "submitAudio": operation(
            "send", "audioSubmitted", "The API publishes a submission", ["AudioSubmitted"]
        ),
        "processAudio": operation(
            "receive", "audioSubmitted", "Workers consume submissions", ["AudioSubmitted"]
        ),
        "publishTranscript": operation(
            "send", "transcriptReady", "Workers publish finished transcripts", ["TranscriptReady"]
        ),
        "publishStatus": operation(
            "send", "taskStatus", "The API (queued) and workers publish", ["TaskStatusChanged"]
        ),
        "retryLater": operation(
            "send", "audioSubmittedRetry", "Workers park transient failures", ["RetryRecord"]
        ),
        "deadLetter": operation(
            "send", "deadLetters", "Workers dead-letter poison records", ["DeadLetter"]
        ),
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "MedVoice pipeline events",
            "version": version,
            "description": f"Event schema_version {SCHEMA_VERSION}. {GUARANTEES}",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "MEDVOICE_KAFKA__BOOTSTRAP; topic names take "
                "MEDVOICE_KAFKA__TOPIC_PREFIX before them",
                "variables": {"bootstrap": {"default": "127.0.0.1:9092"}},
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render(version: str) -> str:
    """The document as YAML text."""
    header = (
        "# Generated by `python -m tools.asyncapi` (make schemas) from the code: do not edit.\n"
    )
    return header + yaml.safe_dump(document(version), sort_keys=False, allow_unicode=True)


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="python -m tools.asyncapi", description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render(version("medvoice-pipeline"))
    if args.check:
        if not args.path.is_file() or args.path.read_text() != text:
            sys.stderr.write(f"{args.path} is stale: run `make schemas`\n")
            return 1
        return 0
    args.path.write_text(text)
    sys.stdout.write(f"{args.path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
