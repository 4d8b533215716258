"""MEDVOICE_API__* limits that depend on each other are checked at start-up."""

import pytest
from pydantic import ValidationError

from producer_api.settings import ApiOptions


def test_event_streams_leave_room_for_other_requests() -> None:
    defaults = ApiOptions()
    assert defaults.sse_max_streams < defaults.limit_concurrency
    with pytest.raises(ValidationError, match=r"SSE_MAX_STREAMS .* must be below"):
        ApiOptions(sse_max_streams=1000, limit_concurrency=1000)
    assert ApiOptions(sse_max_streams=10, limit_concurrency=11).sse_max_streams == 10
