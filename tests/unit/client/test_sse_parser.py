"""The text/event-stream parser against the standard's rules, fed in awkward chunkings."""

from collections.abc import AsyncIterator

import pytest

from medvoice_client.sse import ServerSentEvent, SSEDecoder, aiter_events, iter_events


def events(*chunks: bytes) -> list[ServerSentEvent]:
    return list(iter_events(chunks))


def test_fields_comments_and_multiline_data() -> None:
    stream = (
        b": keep-alive\n"
        b"retry: 2500\n"
        b"id: 7\n"
        b"event: status\n"
        b'data: {"a":\n'
        b"data:1}\n"
        b"unknown: ignored\n"
        b"\n"
    )
    assert events(stream) == [
        ServerSentEvent(event="status", data='{"a":\n1}', id="7", retry_ms=2500)
    ]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_split_byte_by_byte(eol: bytes) -> None:
    stream = eol.join([b"id: 1", b"event: status", b"data: x", b"", b"data: y", b"", b""])
    got = events(*(stream[i : i + 1] for i in range(len(stream))))
    assert [(e.event, e.data, e.id) for e in got] == [("status", "x", "1"), ("message", "y", "1")]


def test_crlf_split_between_chunks_ends_one_line_only() -> None:
    # "\r" ends one chunk, "\n" starts the next: one line end, not an extra blank line
    got = events(b"data: a\r", b"\ndata: b\r\n\r\n")
    assert [e.data for e in got] == ["a\nb"]


def test_utf8_split_across_chunks_and_u2028_inside_data() -> None:
    payload = '{"text": "Naïve\u2028café"}'.encode()
    stream = b"data: " + payload + b"\n\n"
    cut = stream.index("ï".encode()) + 1  # inside the two-byte sequence
    got = events(stream[:cut], stream[cut:])
    assert [e.data for e in got] == [payload.decode()]


def test_bom_stripped_once_and_space_after_colon_once() -> None:
    got = events(b"\xef\xbb\xbfdata:  two spaces\n\n")
    assert [e.data for e in got] == [" two spaces"]


def test_id_persists_until_changed_and_nul_ids_are_ignored() -> None:
    got = events(b"id: a\ndata: 1\n\ndata: 2\n\nid: b\x00c\ndata: 3\n\nid\ndata: 4\n\n")
    assert [e.id for e in got] == ["a", "a", "a", ""]


def test_no_data_dispatches_nothing_but_keeps_id_and_bad_retry_is_ignored() -> None:
    decoder = SSEDecoder()
    got = list(iter_events([b"id: 5\nevent: status\nretry: 1x\n\n"], decoder))
    assert got == []
    assert decoder.last_event_id == "5"
    assert decoder.retry_ms is None


def test_an_event_cut_off_before_its_blank_line_is_discarded() -> None:
    assert [e.data for e in events(b"data: done\n\ndata: half")] == ["done"]


async def test_async_iteration_matches() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"id: 9\nda", b"ta: x\n", b"\n"):
            yield chunk

    got = [e async for e in aiter_events(chunks())]
    assert got == [ServerSentEvent(event="message", data="x", id="9", retry_ms=None)]
