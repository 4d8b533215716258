"""A minimal S3 stand-in that answers every request at once (200, empty body).

The submission benchmark runs the API a second time against it, to separate the API's
own cost from moto's (moto's server is a single Python process on the same 2 cores; real
S3 answers a HEAD in ~10-30 ms from EC2 but does not compete for the API's CPU).
``python -m bench.s3stub --port N``.
"""

import argparse
import asyncio

RESPONSE = (
    b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: "d41d8cd98f00b204e9800998ecf8427e"\r\n'
    b"Content-Type: binary/octet-stream\r\nLast-Modified: Wed, 25 Nov 2026 00:00:00 GMT\r\n\r\n"
)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_main(parser.parse_args().port))


if __name__ == "__main__":
    main()
