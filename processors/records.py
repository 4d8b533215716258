"""Kafka record helpers for the worker: reading records strictly, headers of retries and DLQ."""

import random
from collections.abc import Mapping, Sequence
from typing import NamedTuple

ATTEMPT = "medvoice.attempt"
NOT_BEFORE_MS = "medvoice.not-before-ms"
ERROR_CODE = "medvoice.error.code"
ERROR_MESSAGE = "medvoice.error.message"
ERROR_CAUSE = "medvoice.error.cause"  # the transient cause behind retries_exhausted
ORIGIN_TOPIC = "medvoice.origin.topic"
ORIGIN_PARTITION = "medvoice.origin.partition"
ORIGIN_OFFSET = "medvoice.origin.offset"
REPLAY = "medvoice.replay"  # how many times an operator replayed the task from the DLQ
TRACEPARENT = "traceparent"

Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


class Origin(NamedTuple):
    """Where a record first arrived, kept through retries for the dead-letter headers."""

    topic: str
    """The topic the record was first consumed from."""
    partition: int
    """Its partition there."""
    offset: int
    """Its offset there."""


class MalformedRecord(ValueError):
    """A record whose headers or key are not what the pipeline writes: a poison record."""


def parse_headers(headers: Headers | Sequence[tuple[str, bytes | None]]) -> dict[str, bytes]:
    """Headers as a dict, strictly (Faust gives a list of pairs or a mapping).

    Raises:
        MalformedRecord: a header value is null (Kafka allows it) or not bytes, or a name
            is not a string.
    """
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    parsed: dict[str, bytes] = {}
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, bytes | bytearray):
            raise MalformedRecord(f"header {name!r} has no bytes value")
        parsed[name] = bytes(value)
    return parsed


def header_dict(headers: Headers | Sequence[tuple[str, bytes | None]]) -> dict[str, bytes]:
    """Headers as a dict, leniently: a header without a bytes value is left out."""
    try:
        return parse_headers(headers)
    except MalformedRecord:
        items = headers.items() if isinstance(headers, Mapping) else headers or ()
        return {k: bytes(v) for k, v in items if isinstance(v, bytes | bytearray)}


def parse_key(key: object) -> str:
    """The record's key as text.

    Raises:
        MalformedRecord: the key is null, not bytes, or not UTF-8.
    """
    if not isinstance(key, bytes | bytearray):
        raise MalformedRecord("the record has no key")
    try:
        return bytes(key).decode()
    except UnicodeDecodeError:
        raise MalformedRecord("the record's key is not UTF-8") from None


def header_int(headers: Mapping[str, bytes], name: str, default: int) -> int:
    """An integer header, or ``default`` when absent or malformed."""
    raw = headers.get(name)
    try:
        return int(raw.decode()) if raw is not None else default
    except ValueError:
        return default


def origin_of(headers: Mapping[str, bytes], topic: str, partition: int, offset: int) -> Origin:
    """The record's first topic/partition/offset: from its headers, else where it is now."""
    if ORIGIN_TOPIC in headers:
        return Origin(
            headers[ORIGIN_TOPIC].decode(),
            header_int(headers, ORIGIN_PARTITION, partition),
            header_int(headers, ORIGIN_OFFSET, offset),
        )
    return Origin(topic, partition, offset)


def origin_headers(origin: Origin) -> dict[str, bytes]:
    """Headers that carry ``origin`` onward."""
    return {
        ORIGIN_TOPIC: origin.topic.encode(),
        ORIGIN_PARTITION: str(origin.partition).encode(),
        ORIGIN_OFFSET: str(origin.offset).encode(),
    }


def carried_headers(headers: Mapping[str, bytes]) -> dict[str, bytes]:
    """The headers a retried or dead-lettered record keeps: trace context and replay count."""
    return {name: headers[name] for name in (TRACEPARENT, REPLAY) if name in headers}


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): exponential, capped, half of it jittered."""
    ceiling = min(max_s, base_s * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret
