"""The request-head limit with the httptools parser, on a real uvicorn server and raw sockets.

(h11 enforces MEDVOICE_API__MAX_HEADER_BYTES itself; httptools does not, so the API serves
httptools through producer_api.header_limit.)
"""

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from producer_api.__main__ import server_options
from producer_api.header_limit import HeaderLimitedHttpToolsProtocol
from producer_api.settings import ApiOptions

LIMIT = 4096
STARTUP_S = 10.0


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the number of body bytes it read."""
    assert scope["type"] == "http"
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=["httptools"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """The API's server options (with ``LIMIT``) serving ``echo_length``; yields the port.

    httptools unless a test parametrizes ``server`` indirectly.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    opts = ApiOptions(max_header_bytes=LIMIT, http=request.param, shutdown_grace_s=1)
    kwargs = {k: v for k, v in server_options(opts).items() if k not in ("host", "port")}
    config = uvicorn.Config(echo_length, lifespan="off", log_level="critical", **kwargs)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not srv.started:  # uvicorn has no start-up callback: poll its flag
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1], request.param
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


def exchange(port: int, *chunks: bytes) -> bytes:
    """Send ``chunks`` on one connection; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            for chunk in chunks:
                conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send: what it answered is still readable
        answer = b""
        try:
            while data := conn.recv(65536):
                answer += data
        except ConnectionResetError:
            pass  # closed with unread input: the answer came before
        return answer


def statuses(answer: bytes) -> list[int]:
    """The status codes of the responses in ``answer``."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def refused(parser: str) -> list[list[int]]:
    """What a refused head may be answered: h11's own 400 or 431, ours 431."""
    return [[431], [400]] if parser == "h11" else [[431]]


def request(target: str = "/", headers: str = "", body: bytes = b"", close: bool = False) -> bytes:
    """One HTTP/1.1 request."""
    head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}"
    if close:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode() + body


def test_the_api_serves_httptools_through_the_limited_protocol() -> None:
    http = server_options(ApiOptions(http="httptools", max_header_bytes=LIMIT))["http"]
    assert issubclass(http, HeaderLimitedHttpToolsProtocol)
    assert http.max_head_bytes == LIMIT


def test_an_oversized_header_is_refused(server: tuple[int, str]) -> None:
    port, parser = server
    answer = exchange(port, request(headers=f"X-Big: {'a' * 2 * LIMIT}\r\n"))
    assert statuses(answer) in refused(parser)


def test_many_headers_over_the_limit_together_are_refused(server: tuple[int, str]) -> None:
    port, parser = server
    many = "".join(f"X-H{i}: {'b' * 100}\r\n" for i in range(LIMIT // 100))
    answer = exchange(port, request(headers=many))
    assert statuses(answer) in refused(parser)


def test_an_oversized_request_target_is_refused(server: tuple[int, str]) -> None:
    port, parser = server
    answer = exchange(port, request(target="/?q=" + "c" * 2 * LIMIT))
    assert statuses(answer) in refused(parser)


@pytest.mark.parametrize("server", ["httptools", "h11"], indirect=True)
def test_a_header_that_never_ends_is_refused_while_it_streams(server: tuple[int, str]) -> None:
    port, parser = server
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: "
    # Ten times the limit in pieces and no end of line: refused before it all arrives.
    answer = exchange(port, start, *([b"d" * 1024] * (10 * LIMIT // 1024)))
    assert statuses(answer) in refused(parser)


@pytest.mark.parametrize("server", ["httptools", "h11"], indirect=True)
def test_heads_under_the_limit_with_large_bodies_and_keep_alive_are_served(
    server: tuple[int, str],
) -> None:
    port, _ = server
    near = f"X-Near: {'e' * (LIMIT // 2)}\r\n"
    body = b"f" * (16 * LIMIT)  # a body many times the head limit, sent with its head
    answer = exchange(
        port,
        request(headers=near, body=body) + request(headers=near),  # pipelined, one send
        request(headers=near),
        request(headers=near, body=body, close=True),
    )
    assert statuses(answer) == [200, 200, 200, 200], answer[:600]
    assert answer.count(str(len(body)).encode()) == 2
