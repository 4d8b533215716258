"""The same downstream consumer with confluent-kafka (librdkafka), as Go, .NET and Node teams
use it through their own librdkafka bindings.

    python examples/transcripts_confluent.py --bootstrap 127.0.0.1:9092 [--group my-service]

Deduplicates by task_id, commits after handling; see transcripts_aiokafka.py for the rules.
"""

import argparse
import sys

from confluent_kafka import Consumer, KafkaException
from transcripts_aiokafka import SeenTasks, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="transcript.ready")
    parser.add_argument("--group", default="transcripts-example")
    parser.add_argument("--remember", type=int, default=100_000)
    parser.add_argument("--show-text", action="store_true", help="print the text (patient data)")
    parser.add_argument("--max-tasks", type=int, default=None)
    parser.add_argument("--idle-s", type=float, default=3600.0)
    args = parser.parse_args()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([args.topic])
    seen = SeenTasks(args.remember)
    printed = 0
    try:
        while args.max_tasks is None or printed < args.max_tasks:
            msg = consumer.poll(args.idle_s)
            if msg is None:
                break
            if msg.error():
                raise KafkaException(msg.error())
            headers = {k: v for k, v in (msg.headers() or []) if v is not None}
            parsed = line(msg.value() or b"{}", headers, args.show_text)
            if parsed and seen.first_time(parsed[0]):
                sys.stdout.write(parsed[1] + "\n")
                sys.stdout.flush()
                printed += 1
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
