"""``python -m processors.replay``: send dead-lettered tasks back to ``audio.submitted``.

Each replayed record gets ``medvoice.replay`` one higher than it had, so the worker runs the
task again even though its last status was ``failed``, and the task's readers see the new
outcome. Poison records (``invalid_event``) are never replayed: their bytes are not a task.
Progress is committed under a consumer group, so running it twice replays nothing twice.
"""

import argparse
import asyncio
import re
import sys
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from medvoice_common.kafka import aiokafka_security_kwargs
from processors.records import ATTEMPT, ERROR_CODE, NOT_BEFORE_MS, REPLAY, header_dict, header_int
from processors.settings import WorkerSettings

NOT_REPLAYABLE = frozenset({"invalid_event"})
IDLE_S = 5.0  # stop once the dead-letter topic has had nothing new for this long


async def replay(settings: WorkerSettings, *, codes: set[str] | None, dry_run: bool) -> int:
    """Replay the dead letters; returns how many were (or, dry, would be) replayed."""
    topics = settings.topics
    security = aiokafka_security_kwargs(settings.kafka.security)
    consumer = AIOKafkaConsumer(
        topics.dlq,
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=f"{settings.faust_app_id}-dlq-replay",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **security,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all", **security)
    await consumer.start()
    await producer.start()
    count = 0
    try:
        while batches := await consumer.getmany(timeout_ms=int(IDLE_S * 1000)):
            for records in batches.values():
                for rec in records:
                    headers = header_dict(rec.headers)
                    code = headers.get(ERROR_CODE, b"").decode()
                    if code in NOT_REPLAYABLE or (codes is not None and code not in codes):
                        continue
                    carried = {
                        k: v for k, v in headers.items() if k not in (ATTEMPT, NOT_BEFORE_MS)
                    }
                    carried[REPLAY] = str(header_int(headers, REPLAY, 0) + 1).encode()
                    count += 1
                    if not dry_run:
                        await producer.send_and_wait(
                            topics.submitted, rec.value, key=rec.key, headers=list(carried.items())
                        )
            if not dry_run:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    return count


class DeadLetter(NamedTuple):
    """What an operator sees of a dead-lettered record: ids, code, times (no name, no text)."""

    partition: int
    offset: int
    task_id: str | None  # the record's key when it is a task id (a poison record's may not be)
    code: str
    attempt: int
    replays: int
    timestamp_ms: int


async def dead_letters(settings: WorkerSettings) -> list[DeadLetter]:
    """Every record now on the dead-letter topic, oldest first per partition (no group: read
    only, nothing committed)."""
    dlq = settings.topics.dlq
    consumer = AIOKafkaConsumer(
        dlq,  # without a group, start() assigns every partition of the topic
        bootstrap_servers=settings.kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_security_kwargs(settings.kafka.security),
    )
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        partitions = list(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend(_dead_letter(rec) for rec in records)
    finally:
        await consumer.stop()
    return sorted(found, key=lambda d: (d.partition, d.offset))


def _dead_letter(rec: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers = header_dict(rec.headers)
    key = rec.key.decode(errors="replace") if isinstance(rec.key, bytes) else ""
    return DeadLetter(
        partition=rec.partition,
        offset=rec.offset,
        task_id=key if _UUID.fullmatch(key) else None,
        code=headers.get(ERROR_CODE, b"").decode(errors="replace"),
        attempt=header_int(headers, ATTEMPT, 0),
        replays=header_int(headers, REPLAY, 0),
        timestamp_ms=rec.timestamp,
    )


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m processors.replay", description=__doc__)
    parser.add_argument("--code", action="append", help="replay only this error code (repeat)")
    parser.add_argument("--dry-run", action="store_true", help="count, send nothing")
    args = parser.parse_args(argv)
    try:
        settings = WorkerSettings()
    except ValueError as exc:  # pydantic's ValidationError and unknown MEDVOICE_* names
        sys.stderr.write(f"invalid settings:\n{exc}\n")
        return 2
    codes = set(args.code) if args.code else None
    n = asyncio.run(replay(settings, codes=codes, dry_run=args.dry_run))
    verb = "would replay" if args.dry_run else "replayed"
    sys.stdout.write(f"{verb} {n} dead-lettered task(s) to {settings.topics.submitted}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
