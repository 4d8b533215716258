"""``POST /process_audio_v2/{user_id}`` served without FastAPI's per-request machinery.

Routing, dependency solving, parameter validation field by field and response
serialisation made up about 40 % of a submission's CPU: 0.60 ms per request through
FastAPI's route against 0.37 ms here, measured side by side in ``make bench``
(docs/benchmarks.md). This middleware serves a submission whose parameters are all valid:

- with the route's own :class:`~producer_api.routes.submit.Submission` model (the same
  annotated constraints FastAPI validates with);
- the same bearer parsing, authentication and 403 check (:mod:`producer_api.deps`);
- the same :func:`~producer_api.routes.submit.submit`;
- errors rendered by the app's own ``HTTPException`` handler.

Everything else (a parameter that does not validate, one given twice, another method, a
trailing slash, a ``root_path``) goes on to the app unchanged. FastAPI's route therefore
stays the reference for every answer this path does not give: its 422 bodies, 401s before
validation, redirects and 405s. ``MEDVOICE_API__SUBMIT_FAST_PATH=false`` sends every
submission there.

With an OpenTelemetry SDK configured, FastAPI's native telemetry wraps each request in a
server span that its routing names (``http.route``) and fills with operation spans
(dependencies, endpoint). Submissions then go through the route too, so traces are the
same with or without this module.
"""

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from producer_api import metrics
from producer_api.deps import authenticate, bearer, ensure_may_act_for
from producer_api.routes.submit import SUBMIT_PATH, Services, Submission, submit

HttpErrorHandler = Callable[[Request, Any], Response | Awaitable[Response]]
# Starlette's ``{user_id}``: one path segment, already percent-decoded by the server.
PATH = re.compile(re.escape(SUBMIT_PATH.removesuffix("{user_id}")) + r"([^/]+)")
QUERY = ("file_id", "file_extension", "file_name", "callback_url")
HEADERS = ("traceparent", "idempotency-key")  # FastAPI's names for the route's Header params
# Where FastAPI (0.16x) keeps a request's native telemetry, present only while an
# OpenTelemetry SDK is configured (tests/unit/api/test_submit_fast_path.py checks it).
TELEMETRY_SCOPE_KEY = "fastapi.telemetry"
SERVED, DECLINED, TRACED = (
    metrics.SUBMIT_FAST_PATH.labels(o) for o in ("served", "declined", "traced")
)


def parse(conn: HTTPConnection, user_id: str) -> Submission | None:
    """The submission a request asks for; None unless every parameter is there once and valid.

    Query and headers are read through Starlette's own parsers, as FastAPI reads them.
    """
    values: dict[str, str] = {"user_id": user_id}
    for name in QUERY:
        given = conn.query_params.getlist(name)
        if len(given) > 1:
            return None
        if given:
            values[name] = given[0]
    for name in HEADERS:
        given = conn.headers.getlist(name)
        if len(given) > 1:
            return None
        if given:
            values[name.replace("-", "_")] = given[0]
    try:
        return Submission.model_validate(values)
    except ValidationError:
        return None


class SubmitFastPath:
    """Serves valid submissions directly; hands every other request to ``app``."""

    def __init__(self, app: ASGIApp, route: BaseRoute, http_error: HttpErrorHandler) -> None:
        """Wrap ``app``; ``route`` is the submit route (metrics name it), ``http_error``
        the app's handler of ``HTTPException``.
        """
        if getattr(route, "path", None) != SUBMIT_PATH:
            raise RuntimeError(f"the fast path serves {SUBMIT_PATH}, not {route!r}")
        self.app = app
        self.route = route
        self.http_error = http_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other requests and ASGI scopes pass through)."""
        match = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        if TELEMETRY_SCOPE_KEY in scope:  # traced: the route's spans, as without this path
            TRACED.inc()
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        asked = parse(conn, match[1])
        if asked is None:
            DECLINED.inc()
            await self.app(scope, receive, send)
            return
        SERVED.inc()
        scope["route"] = self.route  # the request metrics' route label, as routing sets it
        response = await self._answer(conn, asked)
        await response(scope, receive, send)

    async def _answer(self, conn: HTTPConnection, asked: Submission) -> Response:
        state = conn.app.state
        try:
            caller = await authenticate(state.verifier, await bearer(conn))
            ensure_may_act_for(caller, asked.user_id)
            answer = await submit(Services.of(state), asked)
        except HTTPException as exc:
            rendered = self.http_error(Request(conn.scope), exc)
            return await rendered if inspect.isawaitable(rendered) else rendered
        return Response(answer.model_dump_json(), media_type="application/json")
