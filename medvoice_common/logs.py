"""JSON-lines logging for every process.

Patient data (transcripts, file names, audio) is never passed to a logger above DEBUG;
records carry ids and timings in ``extra``.
"""

import json
import logging
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from pydantic import ValidationError

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as JSON."""
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)

    def formatException(self, ei: ExcInfo) -> str:
        """The traceback, without the input values a pydantic ValidationError would print.

        A failed model (an event, a transcript document) would otherwise put its fields,
        transcript text or file name included, into the log.
        """
        text = super().formatException(ei)
        exc: BaseException | None = ei[1]
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            if isinstance(exc, ValidationError):
                errors = exc.errors(include_input=False, include_url=False, include_context=False)
                where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in errors)
                summary = f"{exc.error_count()} errors for {exc.title}: {where}"
                text = text.replace(str(exc), summary)
            exc = exc.__cause__ or exc.__context__
        return text


def configure(level: str) -> None:
    """Send every logger's records to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "aiokafka"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
