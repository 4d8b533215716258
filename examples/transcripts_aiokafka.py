"""A downstream consumer of MedVoice's ``transcript.ready`` topic, with aiokafka.

    python examples/transcripts_aiokafka.py --bootstrap 127.0.0.1:9092 [--group my-service]

Prints one line per *task* as JSON (task_id, word count, duration, transcript URI; the text
only with ``--show-text``: it is patient data). Delivery is at-least-once, so the same task's
TranscriptReady can arrive twice (with a new event_id): this consumer deduplicates by task_id
over the last ``--remember`` tasks, and commits its offsets only after handling a record.
The event's CloudEvents headers (``ce_type``, ``ce_id``) are read beside the JSON body.
"""

import argparse
import asyncio
import json
import sys
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer


class SeenTasks:
    """The task ids handled lately (bounded: the oldest are forgotten first)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, task_id: str) -> bool:
        """True the first time ``task_id`` is seen (within the window)."""
        if task_id in self._ids:
            self._ids.move_to_end(task_id)
            return False
        self._ids[task_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def line(value: bytes, headers: dict[str, bytes], show_text: bool) -> tuple[str, str] | None:
    """The task id and the line to print for one record; None when it is not a transcript."""
    event = json.loads(value)
    if event.get("event_type") != "TranscriptReady":
        return None
    out = {
        "task_id": event["task_id"],
        "ce_id": headers.get("ce_id", b"").decode() or None,
        "word_count": event["word_count"],
        "duration_s": event["duration_s"],
        "transcript_uri": event["transcript_uri"],
    }
    if show_text:
        out["text"] = event["text"]
    return event["task_id"], json.dumps(out)


async def run(args: argparse.Namespace) -> int:
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    seen = SeenTasks(args.remember)
    printed = 0
    await consumer.start()
    try:
        while args.max_tasks is None or printed < args.max_tasks:
            batch = await consumer.getmany(timeout_ms=int(args.idle_s * 1000))
            if not batch:
                break  # nothing for --idle-s seconds
            for records in batch.values():
                for record in records:
                    headers = {k: v for k, v in record.headers if v is not None}
                    parsed = line(record.value or b"{}", headers, args.show_text)
                    if parsed and seen.first_time(parsed[0]):
                        sys.stdout.write(parsed[1] + "\n")
                        sys.stdout.flush()
                        printed += 1
            await consumer.commit()
    finally:
        await consumer.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="transcript.ready")
    parser.add_argument("--group", default="transcripts-example")
    parser.add_argument("--remember", type=int, default=100_000, help="task ids kept for dedup")
    parser.add_argument("--show-text", action="store_true", help="print the text (patient data)")
    parser.add_argument("--max-tasks", type=int, default=None, help="stop after this many")
    parser.add_argument("--idle-s", type=float, default=3600.0, help="stop after idling this long")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
