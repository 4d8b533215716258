"""The status table's entries: what the decisions read, in 14 bytes, old JSON still read."""

import time

import pytest
from faust.serializers import codecs

from processors.status_table import ENTRY_CODEC, FIELDS

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
