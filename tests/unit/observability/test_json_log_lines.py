"""JSON log lines (medvoice_common.logs): fields, and no model input values in tracebacks."""

import json
import logging
import sys

import pytest
from pydantic import BaseModel

from medvoice_common.logs import JsonFormatter

MARKER = "zebra-marker-7731.m4a"


class Doc(BaseModel):
    word_count: int


def render(record: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_a_record_is_one_json_object_with_its_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "processors.pipeline",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "transcribed",
            "task_id": "t-1",
            "duration_s": 1.5,
            "stages": {"asr": 1.2},
        }
    )
    line = render(record)
    assert line["msg"] == "transcribed"
    assert line["level"] == "INFO"
    assert line["task_id"] == "t-1"
    assert line["duration_s"] == 1.5
    assert line["stages"] == {"asr": 1.2}
    assert str(line["ts"]).endswith("+00:00")


def test_a_validation_error_s_input_is_not_logged() -> None:
    try:
        try:
            Doc.model_validate({"word_count": MARKER})
        except ValueError as exc:
            raise RuntimeError("emit failed") from exc
    except RuntimeError:
        record = logging.getLogger("x").makeRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "unexpected error",
            (),
            exc_info=sys.exc_info(),
        )
    line = render(record)
    assert MARKER not in json.dumps(line)
    assert "word_count: int_parsing" in str(line["exc"])
    assert "RuntimeError: emit failed" in str(line["exc"])


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_configure_sets_the_level(level: str) -> None:
    from medvoice_common.logs import configure

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure(level)
        assert root.level == logging.getLevelName(level)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
