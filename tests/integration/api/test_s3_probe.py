"""The API's S3 existence check: against moto over HTTP, and against servers that misbehave."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import boto3
import pytest
from pydantic import SecretStr

from medvoice_common import s3_probe
from medvoice_common.s3_probe import ObjectProbe, S3ProbeError
from medvoice_common.settings import CommonSettings, S3Options

pytestmark = pytest.mark.integration


def settings_for(
    endpoint: str, bucket: str = "probe", read_timeout_s: float = 20.0
) -> CommonSettings:
    return CommonSettings(
        s3=S3Options(
            endpoint_url=endpoint,
            bucket=bucket,
            access_key_id=SecretStr("test"),
            secret_access_key=SecretStr("test"),
            connect_timeout_s=1.0,
            read_timeout_s=read_timeout_s,
        )
    )


async def probe_of(settings: CommonSettings) -> AsyncIterator[ObjectProbe]:
    probe = ObjectProbe(settings)
    await probe.start()
    try:
        yield probe
    finally:
        await probe.stop()


class Server:
    """A local HTTP server answering each request head with ``answer(n)``; counts connections."""

    def __init__(self, answer: Callable[[int], bytes | None], close_after: bool = False) -> None:
        self.answer, self.close_after = answer, close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                reply = self.answer(len(self.requests))
                if reply is None:  # hang: the client's timeout must end it
                    await asyncio.sleep(3600)
                writer.write(reply or b"")
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[Server], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(server: Server) -> str:
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\nContent-Type: audio/mp4\r\n\r\n"


async def test_found_and_not_found_on_moto(s3_endpoint: str) -> None:
    bucket = f"probe-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="audio/u-1/f 1+é.m4a", Body=b"\0" * 10)
    async for probe in probe_of(settings_for(s3_endpoint, bucket)):
        assert await probe.exists("audio/u-1/f 1+é.m4a") is True
        assert await probe.exists("audio/u-1/other.m4a") is False
        results = await asyncio.gather(*(probe.exists("audio/u-1/f 1+é.m4a") for _ in range(20)))
        assert all(results)
    async for probe in probe_of(settings_for(s3_endpoint, f"missing-{bucket}")):
        assert await probe.exists("audio/u-1/f 1+é.m4a") is False  # no bucket: 404 too


async def test_keeps_connections_alive_and_sends_a_signed_head(serve: Serve) -> None:
    server = Server(lambda n: OK)
    async for probe in probe_of(settings_for(await serve(server))):
        for _ in range(5):
            assert await probe.exists("audio/u/f.m4a")
    assert server.connections == 1  # one kept-alive connection; no body was awaited after 200
    head = server.requests[0].decode()
    assert head.startswith("HEAD /probe/audio/u/f.m4a HTTP/1.1\r\n")
    assert "Authorization: AWS4-HMAC-SHA256 Credential=test/" in head


async def test_a_connection_the_server_closed_is_replaced(serve: Serve) -> None:
    server = Server(lambda n: OK.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n"),
                    close_after=True)  # fmt: skip
    async for probe in probe_of(settings_for(await serve(server))):
        for _ in range(3):  # each reused connection is found closed, and the HEAD sent again
            assert await probe.exists("audio/u/f.m4a")
    assert server.connections == 3 and len(server.requests) == 3


async def test_connection_close_is_honoured(serve: Serve) -> None:
    server = Server(lambda n: b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n")
    async for probe in probe_of(settings_for(await serve(server))):
        assert await probe.exists("a") is False
        assert await probe.exists("b") is False
    assert server.connections == 2


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "HEAD answered 403"),
        (b"HTTP/1.1 301 Moved Permanently\r\nContent-Length: 0\r\n\r\n", "HEAD answered 301"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP/1.x response"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n", "too long"),
        (b"HTTP/1.1 200", "IncompleteReadError"),
        (None, "TimeoutError"),
    ],
    ids=["403", "redirect", "not-http", "huge-head", "cut-short", "hangs"],
)
async def test_anything_but_found_or_not_found_is_an_error(
    serve: Serve, reply: bytes | None, reason: str
) -> None:
    server = Server(lambda n: reply, close_after=True)
    async for probe in probe_of(settings_for(await serve(server), read_timeout_s=0.5)):
        with pytest.raises(S3ProbeError, match=reason):
            await probe.exists("audio/u/f.m4a")


async def test_nothing_listening_is_an_error() -> None:
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    async for probe in probe_of(settings_for(f"http://127.0.0.1:{port}")):
        with pytest.raises(S3ProbeError, match="ConnectionRefusedError"):
            await probe.exists("audio/u/f.m4a")


async def test_an_idle_connection_past_keep_alive_is_not_reused(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_probe, "KEEPALIVE_S", 0.0)  # every idle connection is too old
    server = Server(lambda n: OK)
    async for probe in probe_of(settings_for(await serve(server))):
        for _ in range(3):
            assert await probe.exists("audio/u/f.m4a")
    assert server.connections == 3
