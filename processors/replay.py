"""``python -m processors.replay``: send dead-lettered tasks back to ``audio.submitted``.

Each replayed record gets ``medvoice.replay`` one higher than it had, so the worker runs the
task again even though its last status was ``failed``, and the task's readers see the new
outcome. Poison records (``invalid_event``) are never replayed: their bytes are not a task.
Progress is committed under a consumer group, so running it twice replays nothing twice.
"""

import argparse
import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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
