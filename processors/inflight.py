"""Per-task order among concurrent handlers: one lock per record key, held while it is handled.

Records of one task share a key (``task_id``) and a partition; a worker with several records
in flight must still handle them one after another, in the order the stream handed them
over. :class:`KeyLocks` gives each key a FIFO lock (``asyncio.Lock`` wakes its waiters in
order) that exists only while some handler holds or awaits it, so the map never grows with
the number of tasks seen.
"""

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyLocks:
    """FIFO locks by key, dropped when nobody holds or waits for them."""

    def __init__(self) -> None:
        """Start with no key locked."""
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """Keys held or awaited now."""
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: Hashable | None) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the block (``None``: no lock, e.g. a record without a key)."""
        if key is None:
            yield
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
