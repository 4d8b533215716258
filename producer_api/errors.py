"""Error bodies that never echo large inputs, stack traces or internal addresses."""

from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_ECHO_CHARS = 64  # a short offending value helps the caller; a large one is not echoed
MAX_ERRORS = 10  # a request with hundreds of bad fields gets the first few


def _short(value: Any) -> bool:
    if isinstance(value, bool | int | float) or value is None:
        return True
    return isinstance(value, str) and len(value) <= MAX_ECHO_CHARS


def public_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors as the client sees them: type, location, message, short input."""
    shown = []
    for error in list(errors)[:MAX_ERRORS]:
        item: dict[str, Any] = {"type": error["type"], "loc": error["loc"], "msg": error["msg"]}
        if "input" in error and _short(error["input"]):
            item["input"] = error["input"]
        shown.append(item)
    return shown


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with bounded details (the request's own values echoed only when short)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": jsonable_encoder(public_errors(errors))}, status_code=422)
