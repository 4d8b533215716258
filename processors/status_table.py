"""The worker's task-status table: what a delivery is decided against, and how it is stored.

One entry per task id, holding only what the decisions in :mod:`processors.agents` read:
the status (``processing``, or final: ``completed`` / ``failed``), the transient attempt
and replay generation it belongs to, deliveries begun without an outcome (``unfinished``),
whether the TranscriptReady of a completed task was acknowledged
(``transcript_published``), and when the entry was last written (``at``, Unix seconds:
what the retention sweep reads). The agents read and write plain dicts with these keys;
:class:`EntryCodec` stores them as 14 bytes (Faust's JSON dict of the same took 61 to 73), in
the table's RocksDB store and its changelog topic alike, and still reads the JSON entries
an older worker wrote.

Entries are kept as long as a task's status (``MEDVOICE_RETENTION__TRANSCRIPTS_DAYS``
after the last change): :meth:`StatusTable.expire` deletes older ones, which writes a
tombstone to the changelog, so compaction drops them there too.
"""

import asyncio
import json
import logging
import struct
import time
from collections.abc import Iterator
from typing import Any

import faust
from faust.serializers.codecs import Codec
from faust.types import TP, FutureMessage

from medvoice_common.settings import RetentionSettings
from schemas.status import TaskStatus

log = logging.getLogger(__name__)

STATUS_TABLE = "task_status"
FORMAT_VERSION = 1
_LAYOUT = struct.Struct("<BBHHII")  # version, flags, attempt, unfinished, replay, at
_STATUS_CODES = (TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED)
_STATUS_MASK = 0b011
_PUBLISHED = 0b100
SCAN_SLICE = 5_000  # entries read between two yields to the event loop
FIELDS = ("status", "attempt", "replay", "unfinished", "transcript_published", "at")
"""The keys of a decoded entry (absent ones are written as 0 / False; ``at`` as now)."""


class EntryCodec(Codec):
    """A status-table entry as 14 bytes (see the module's docstring)."""

    def _dumps(self, obj: Any) -> bytes:
        entry: dict[str, Any] = obj
        unknown = set(entry) - set(FIELDS)
        if unknown:
            raise ValueError(f"status table entries have no field {sorted(unknown)}")
        flags = _STATUS_CODES.index(TaskStatus(entry["status"]))
        if entry.get("transcript_published"):
            flags |= _PUBLISHED
        at = entry.get("at")
        return _LAYOUT.pack(
            FORMAT_VERSION,
            flags,
            int(entry.get("attempt", 0)),
            int(entry.get("unfinished", 0)),
            int(entry.get("replay", 0)),
            int(time.time() if at is None else at),
        )

    def _loads(self, s: bytes) -> Any:
        if s[:1] == b"{":  # written by a worker before this format: a JSON dict
            old: dict[str, Any] = json.loads(s)
            return {"unfinished": 0, "transcript_published": False, "at": 0, **old}
        version, flags, attempt, unfinished, replay, at = _LAYOUT.unpack(s)
        if version != FORMAT_VERSION:
            raise ValueError(f"status table entry of unknown format {version}")
        return {
            "status": _STATUS_CODES[flags & _STATUS_MASK].value,
            "attempt": attempt,
            "replay": replay,
            "unfinished": unfinished,
            "transcript_published": bool(flags & _PUBLISHED),
            "at": at,
        }


ENTRY_CODEC = EntryCodec()


class StatusTable(faust.Table[str, Any]):
    """The task-status table; a write can be awaited until its changelog record is acked.

    ``producer.flush()`` is not enough: Faust's buffer hands a record to the producer in a
    task of its own, and a flush in between sees neither (a SIGKILL test lost the count).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create the table (same arguments as ``faust.Table``; entries use EntryCodec)."""
        super().__init__(*args, **kwargs)
        # Before the store and the changelog topic exist (both are made on first use).
        self.value_serializer = ENTRY_CODEC
        self._writes: dict[Any, FutureMessage] = {}

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, *args: Any, **kwargs: Any
    ) -> FutureMessage:
        """Send a modification to the changelog, remembering it per key."""
        fut = super().send_changelog(partition, key, value, *args, **kwargs)
        self._writes[key] = fut
        fut.add_done_callback(lambda done: self._forget(key, done))
        return fut

    def _forget(self, key: Any, done: Any) -> None:
        if self._writes.get(key) is done:  # acknowledged: nothing left to wait for
            del self._writes[key]

    async def written(self, key: str) -> None:
        """Wait until the last write of ``key`` is on the broker (acks=all)."""
        fut = self._writes.get(key)
        if fut is not None:
            await fut

    async def expire(self, written_before: float) -> int:
        """Delete the entries of the active partitions last written before
        ``written_before`` (Unix seconds); returns how many (0 with the memory store,
        which holds no more than the changelog it is rebuilt from at each start).

        One pass over the entries, letting other work run every ``SCAN_SLICE`` of them.
        Each deletion is a tombstone on the changelog (in the entry's own partition), so
        standbys and a rebuilt store drop it too and compaction removes it. An entry an
        older worker wrote in JSON (no time) is rewritten with the time of this pass: its
        retention counts from the upgrade.
        """
        store: Any = self.data
        if not has_partition_dbs(store) or self.app.in_recovery or self.app.rebalancing:
            return 0  # an owned partition's entries may not all be there yet
        now = time.time()
        expired = 0
        for partition, db in list(self._active_dbs()):
            for seen, (raw_key, value) in enumerate(db.items(), 1):
                if seen % SCAN_SLICE == 0:
                    await asyncio.sleep(0)
                if raw_key == store.offset_key:
                    continue
                entry = ENTRY_CODEC.loads(value)
                key = self.app.serializers.loads_key(None, raw_key, serializer=self.key_serializer)
                if value[:1] == b"{":
                    entry["at"] = now
                    self.send_changelog(partition, key, entry)
                    db.put(raw_key, ENTRY_CODEC.dumps(entry))
                elif entry["at"] < written_before:
                    self.send_changelog(partition, key, None, value_serializer="raw")
                    db.delete(raw_key)
                    store._key_index.pop(raw_key, None)  # noqa: SLF001 - key -> partition cache
                    expired += 1
        return expired

    def _active_dbs(self) -> Iterator[tuple[int, Any]]:
        """(partition, RocksDB) of each partition this worker owns (not its standbys)."""
        actives = self.app.assignor.assigned_actives()
        # Faust has no public per-partition API (checked at start-up: has_partition_dbs).
        store: Any = self.data
        dbs: dict[int, Any] = store._dbs  # noqa: SLF001
        for partition, db in list(dbs.items()):
            if TP(self.changelog_topic_name, partition) in actives:
                yield partition, db


def register_expiry(app: faust.App, table: StatusTable, retention: RetentionSettings) -> None:
    """Delete entries ``transcripts_days`` after their last write, every ``sweep_interval_s``
    (the retention of a task's status)."""
    keep_s = retention.transcripts_days * 86_400

    async def expire_entries() -> None:
        started = time.perf_counter()
        expired = await table.expire(time.time() - keep_s)
        if expired:
            log.info(
                "status table entries past their retention deleted",
                extra={"count": expired, "duration_s": round(time.perf_counter() - started, 3)},
            )

    app.timer(retention.sweep_interval_s, name="status_table_expiry")(expire_entries)


_ROCKSDB_INTERNALS = ("_dbs", "_key_index", "offset_key")


def has_partition_dbs(store: Any) -> bool:
    """Whether ``store`` is Faust's RocksDB store with what :meth:`StatusTable.expire` uses."""
    return bool(store.__class__.__module__ == "faust.stores.rocksdb")


def check_store(table: StatusTable) -> None:
    """Fail at start-up when the RocksDB store lacks the internals ``expire`` relies on."""
    store = table.data
    if has_partition_dbs(store):
        missing = [name for name in _ROCKSDB_INTERNALS if not hasattr(store, name)]
        if missing:
            raise RuntimeError(f"Faust's RocksDB store has no {missing}: expire() needs them")
