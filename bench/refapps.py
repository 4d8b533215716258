"""The two reference endpoints of the submission benchmark, served like the real API.

* ``bare``: FastAPI answering the seed contract's JSON with a fresh task id; no auth, no
  S3 check, no publishing: the ceiling of FastAPI + uvicorn on this machine.
* ``celery``: a minimal replica of the seed's architecture: the same route dispatching a
  Celery task to Redis with ``.delay()`` from an ``async def`` route (as the seed did: the
  blocking Redis round trip runs on the event loop).

Both are run with the same uvicorn options as ``python -m producer_api`` with the API's
defaults (``server_options``: the same HTTP parser, header limit and event loop):
``python -m bench.refapps bare --port N`` or ``celery --port N --redis URL``.
"""

import argparse
import uuid

import uvicorn
from fastapi import FastAPI

from producer_api.__main__ import server_options
from producer_api.settings import ApiOptions

MESSAGE = "Audio processing started in the background"


def bare_app() -> FastAPI:
    """The same JSON as the real route, without publishing."""
    app = FastAPI()

    @app.post("/process_audio_v2/{user_id}")
    async def process_audio_v2(
        user_id: str,
        file_id: str | None = None,
        file_extension: str = "m4a",
        file_name: str | None = None,
    ) -> dict[str, str]:
        return {"message": MESSAGE, "task_id": str(uuid.uuid4())}

    return app


def celery_app(redis_url: str) -> FastAPI:
    """The seed's shape: FastAPI + ``process_audio.delay(...)`` on a Redis broker."""
    from celery import Celery

    celery = Celery("medvoice_seed", broker=redis_url)

    # celery has no type hints: its decorator would leave the task untyped
    @celery.task(name="process_audio")  # type: ignore[untyped-decorator]
    def process_audio(
        user_id: str, file_id: str | None, file_extension: str, file_name: str | None
    ) -> None:  # executed by a Celery worker, which this benchmark does not run
        return None

    app = FastAPI()

    @app.post("/process_audio_v2/{user_id}")
    async def process_audio_v2(
        user_id: str,
        file_id: str | None = None,
        file_extension: str = "m4a",
        file_name: str | None = None,
    ) -> dict[str, str]:
        task = process_audio.delay(user_id, file_id, file_extension, file_name)
        return {"message": MESSAGE, "task_id": task.id}

    return app


def main() -> None:
    """Serve one reference app with the API's uvicorn settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("kind", choices=("bare", "celery"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    app = bare_app() if args.kind == "bare" else celery_app(args.redis)
    opts = ApiOptions(host="127.0.0.1", port=args.port)  # the API's defaults
    uvicorn.run(app, **server_options(opts), log_level="warning")


if __name__ == "__main__":
    main()
