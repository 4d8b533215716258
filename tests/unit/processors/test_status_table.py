"""The status table's entries: what the decisions read, in 14 bytes, old JSON still read."""

import time
from typing import Any, cast

import pytest
from faust.serializers import codecs

from processors.errors import ErrorCode, TaskError
from processors.pipeline import PipelineContext
from processors.records import REPLAY
from processors.status_table import ENTRY_CODEC, FIELDS
from schemas.events import AudioSubmitted
from tests.unit.processors.harness import Harness, document, submitted_event, task, transcribes

JSON = codecs.get_codec("json")  # what the table stored before (Faust's default)


@pytest.mark.parametrize(
    "entry",
    [
        {"status": "processing", "attempt": 2, "replay": 1, "unfinished": 3},
        {"status": "completed", "attempt": 0, "replay": 0, "transcript_published": True},
        {"status": "completed", "attempt": 4, "replay": 70000, "transcript_published": False},
        {"status": "failed", "attempt": 5, "replay": 0},
    ],
)
def test_an_entry_reads_back_as_the_agents_wrote_it(entry: dict[str, object]) -> None:
    before = time.time()
    back = ENTRY_CODEC.loads(ENTRY_CODEC.dumps(entry))
    assert set(back) == set(FIELDS)
    assert {k: back[k] for k in entry} == entry
    assert back["unfinished"] == entry.get("unfinished", 0)
    assert back["transcript_published"] is bool(entry.get("transcript_published"))
    assert int(before) <= back["at"] <= time.time()  # stamped when written


def test_an_entry_is_14_bytes_where_json_took_61_to_73() -> None:
    completed = {"status": "completed", "attempt": 0, "replay": 0, "transcript_published": True}
    processing = {"status": "processing", "attempt": 0, "replay": 0, "unfinished": 1}
    assert len(JSON.dumps(completed)) == 73 and len(JSON.dumps(processing)) == 61
    assert len(ENTRY_CODEC.dumps(completed)) == len(ENTRY_CODEC.dumps(processing)) == 14


def test_a_copied_entry_keeps_its_time() -> None:
    entry = ENTRY_CODEC.loads(ENTRY_CODEC.dumps({"status": "completed", "at": 1_000}))
    again = ENTRY_CODEC.loads(ENTRY_CODEC.dumps({**entry, "transcript_published": True}))
    assert again["at"] == 1_000 and again["transcript_published"] is True


def test_an_entry_an_older_worker_wrote_in_json_is_read() -> None:
    old = JSON.dumps({"status": "completed", "attempt": 1, "replay": 2})
    entry = ENTRY_CODEC.loads(old)
    assert entry["status"] == "completed" and entry["attempt"] == 1 and entry["replay"] == 2
    assert entry["transcript_published"] is False and entry["at"] == 0  # expires first


def test_a_field_the_format_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="no field"):
        ENTRY_CODEC.dumps({"status": "completed", "text": "patient data"})
    with pytest.raises(ValueError):
        ENTRY_CODEC.dumps({"status": "queued"})


class StoredTable(dict[str, Any]):
    """A table that keeps each entry as the store does: encoded, and decoded when read."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, ENTRY_CODEC.dumps(value))

    def __getitem__(self, key: str) -> Any:
        return ENTRY_CODEC.loads(super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self) -> Any:
        return [(k, self[k]) for k in self]

    def encoded(self) -> list[bytes]:
        return list(super().values())


def stored_harness(run: Any = transcribes, **worker: Any) -> Harness:
    h = Harness(run, **worker)
    h.table = StoredTable()
    h.processor.table = cast(Any, h.table)
    return h


async def test_every_entry_the_agents_write_fits_the_format_and_decides_the_same() -> None:
    """Completion, a duplicate, a replay, retries to a dead letter: through 14-byte entries."""
    runs: list[str] = []

    async def counted(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        runs.append(str(sub.task_id))
        return document(sub), True

    h = stored_harness(counted)
    sub = task()
    await h.deliver(submitted_event(sub, offset=0))
    await h.deliver(submitted_event(sub, offset=1))  # a redelivery: skipped
    assert len(runs) == 1 and h.statuses(sub) == ["processing", "completed"]
    assert h.table[str(sub.task_id)]["transcript_published"] is True
    await h.deliver(submitted_event(sub, offset=2, headers=[(REPLAY, b"1")]))
    assert len(runs) == 2 and h.table[str(sub.task_id)]["replay"] == 1

    async def storage_down(ctx: PipelineContext, sub: AudioSubmitted) -> Any:
        raise TaskError(ErrorCode.STORAGE_UNAVAILABLE, "Storage unavailable.", transient=True)

    h = stored_harness(storage_down, max_attempts=3)
    sub = task()
    await h.deliver(submitted_event(sub))
    await h.deliver_retries()
    entry = h.table[str(sub.task_id)]
    assert entry["status"] == "failed" and entry["attempt"] == 3
    assert all(len(raw) == 14 for raw in cast(StoredTable, h.table).encoded())
