"""The status view's on-disk store: one RocksDB database per API replica.

Keys (one keyspace, a one-byte prefix each; user ids never contain a NUL byte):

- ``t`` + task id (16 bytes): the task's latest change: a fixed header (status, replay,
  attempt, occurred_at, submitted_at), the owner, then the record's JSON.
- ``u`` + user id + NUL + (2**63 - submitted_at µs) + task id: the per-user index, newest
  first; the value is the status byte (so a status filter reads no task entries).
- ``e`` + expiry µs + task id: the retention index, soonest first.
- ``o`` + partition: the next offset of ``task.status`` to read; written in the same batch
  as the data it covers, so a restart resumes exactly there.
- ``m`` + name: metadata (the topic the store follows).

Memory is what RocksDB is given (block cache, write buffers), whatever the number of tasks.
"""

import shutil
import struct
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, cast

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

from producer_api.settings import ApiSettings
from schemas.status import TaskStatus

_TASK, _USER, _EXPIRY, _OFFSET, _META = b"t", b"u", b"e", b"o", b"m"
_HEADER = struct.Struct(">BIIqqH")  # status, replay, attempt, occurred µs, submitted µs, len
_STATUS_CODES = list(TaskStatus)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INVERT = 2**63
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
CURSOR_BYTES = 8 + 16  # the index key's suffix: inverted time and task id


def micros(at: datetime) -> int:
    """Microseconds since the epoch."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    """The UTC datetime of ``us`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=us)


class StoredTask(NamedTuple):
    """A task's entry: what ordering and ownership need, and the record itself."""

    status: TaskStatus
    replay: int
    attempt: int
    occurred_at: datetime
    submitted_us: int
    user_id: str
    raw: bytes


class IndexEntry(NamedTuple):
    """One row of a user's index."""

    task_id: uuid.UUID
    status: TaskStatus
    submitted_us: int
    cursor: bytes


def _task_key(task_id: uuid.UUID) -> bytes:
    return _TASK + task_id.bytes


def _user_prefix(user_id: str) -> bytes:
    return _USER + user_id.encode() + b"\x00"


def _user_key(user_id: str, submitted_us: int, task_id: uuid.UUID) -> bytes:
    return _user_prefix(user_id) + _U64.pack(_INVERT - submitted_us) + task_id.bytes


def _expiry_key(expires_us: int, task_id: uuid.UUID) -> bytes:
    return _EXPIRY + _I64.pack(expires_us) + task_id.bytes


def _encode(task: StoredTask) -> bytes:
    user = task.user_id.encode()
    header = _HEADER.pack(
        _STATUS_CODES.index(task.status),
        task.replay,
        task.attempt,
        micros(task.occurred_at),
        task.submitted_us,
        len(user),
    )
    return header + user + task.raw


def _decode(value: bytes) -> StoredTask:
    code, replay, attempt, occurred, submitted, n = _HEADER.unpack_from(value)
    start = _HEADER.size
    return StoredTask(
        _STATUS_CODES[code],
        replay,
        attempt,
        from_micros(occurred),
        submitted,
        value[start : start + n].decode(),
        value[start + n :],
    )


class StoreOptions(NamedTuple):
    """How much memory RocksDB may use."""

    block_cache_bytes: int
    write_buffer_bytes: int


class StatusStore:
    """Tasks, the per-user and expiry indexes, and the topic offsets, in one RocksDB."""

    def __init__(self, path: Path, options: StoreOptions, retention: timedelta) -> None:
        """Open (or create) the database at ``path``; ``retention`` dates the expiry index.

        Raises:
            Exception: RocksDB's own error when another process holds the database.
        """
        self.path = path
        self.retention = retention
        self._options = options
        self.temporary = False
        path.mkdir(parents=True, exist_ok=True)
        self._db = self._open()

    def _open(self) -> Rdict:
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(self._options.block_cache_bytes))
        opts.set_block_based_table_factory(table)
        opts.set_write_buffer_size(self._options.write_buffer_bytes)
        opts.set_max_write_buffer_number(2)
        return Rdict(str(self.path), opts)

    @classmethod
    def open(cls, settings: ApiSettings) -> "StatusStore":
        """The store the settings name (a temporary directory, removed at close, if none)."""
        api = settings.api
        path = api.state_dir
        temporary = path is None
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="medvoice-api-state-"))
        store = cls(
            path / "status",
            StoreOptions(
                api.status_store_block_cache_mb << 20, api.status_store_write_buffer_mb << 20
            ),
            timedelta(days=settings.retention.transcripts_days),
        )
        store.temporary = temporary
        return store

    def close(self) -> None:
        """Flush and close (and delete a temporary store)."""
        self._db.close()
        if self.temporary:
            shutil.rmtree(self.path.parent, ignore_errors=True)

    def wipe(self) -> None:
        """Delete everything (a store that no longer matches the topic)."""
        self._db.close()
        shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self._db = self._open()

    # --- metadata and offsets -------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        """A metadata value."""
        value = self._db.get(_META + name.encode())
        return None if value is None else bytes(value).decode()

    def set_meta(self, name: str, value: str) -> None:
        """Set a metadata value."""
        self._db.put(_META + name.encode(), value.encode())

    def offsets(self) -> dict[int, int]:
        """The next offset to read, per partition, as stored."""
        return {_U32.unpack(k[1:])[0]: _I64.unpack(v)[0] for k, v in self._scan(_OFFSET)}

    # --- tasks ----------------------------------------------------------------------------

    def get(self, task_id: uuid.UUID) -> StoredTask | None:
        """The task's entry, or None."""
        value = self._db.get(_task_key(task_id))
        return None if value is None else _decode(value)

    def get_many(self, task_ids: list[uuid.UUID]) -> list[StoredTask | None]:
        """Entries of several tasks at once (one RocksDB multi-get)."""
        if not task_ids:
            return []
        values = cast("list[bytes | None]", self._db.get([_task_key(t) for t in task_ids]))
        return [None if v is None else _decode(v) for v in values]

    def write(
        self,
        task_id: uuid.UUID,
        old: StoredTask | None,
        new: StoredTask | None,
        offset: tuple[int, int] | None = None,
    ) -> None:
        """Replace ``old`` by ``new`` (None: remove the task), indexes and offset included.

        Args:
            task_id: the task.
            old: its entry as read before (the index keys to remove).
            new: its entry now, or None for a tombstone.
            offset: (partition, next offset) to record in the same atomic batch.
        """
        batch = WriteBatch(raw_mode=True)
        if old is not None:
            batch.delete(_user_key(old.user_id, old.submitted_us, task_id))
            batch.delete(_expiry_key(self._expires(old), task_id))
        if new is None:
            batch.delete(_task_key(task_id))
        else:
            batch.put(_task_key(task_id), _encode(new))
            code = _STATUS_CODES.index(new.status).to_bytes(1, "big")
            batch.put(_user_key(new.user_id, new.submitted_us, task_id), code)
            batch.put(_expiry_key(self._expires(new), task_id), b"")
        if offset is not None:
            batch.put(_OFFSET + _U32.pack(offset[0]), _I64.pack(offset[1]))
        self._db.write(batch)

    def record_offset(self, partition: int, next_offset: int) -> None:
        """Record a partition's next offset alone (records that changed nothing)."""
        self._db.put(_OFFSET + _U32.pack(partition), _I64.pack(next_offset))

    def _expires(self, task: StoredTask) -> int:
        return micros(task.occurred_at + self.retention)

    # --- indexes --------------------------------------------------------------------------

    def user_tasks(self, user_id: str, after: bytes | None) -> Iterator[IndexEntry]:
        """The user's tasks, newest submission first, from just after the cursor ``after``."""
        prefix = _user_prefix(user_id)
        start = prefix + after + b"\x00" if after is not None else prefix
        for key, value in self._scan(prefix, start):
            suffix = key[len(prefix) :]
            submitted = _INVERT - _U64.unpack_from(suffix)[0]
            yield IndexEntry(
                uuid.UUID(bytes=suffix[8:]), _STATUS_CODES[value[0]], submitted, suffix
            )

    def expired(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Up to ``limit`` tasks whose retention ended before ``now``, soonest first."""
        bound = _EXPIRY + _I64.pack(micros(now))
        found: list[uuid.UUID] = []
        for key, _ in self._scan(_EXPIRY):
            if key >= bound or len(found) >= limit:
                break
            found.append(uuid.UUID(bytes=key[9:]))
        return found

    def _scan(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(start if start is not None else prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                return
            yield key, it.value()
            it.next()

    def approximate_tasks(self) -> int:
        """RocksDB's estimate of the number of keys (all kinds; for a metric)."""
        return int(self._db.property_int_value("rocksdb.estimate-num-keys") or 0)
