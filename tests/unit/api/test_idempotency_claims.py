"""The rules of an idempotency claim that need no S3: its lease and what a request asked."""

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

from producer_api.idempotency import Claim, request_fingerprint
from schemas.ids import AudioExtension

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def claim(**fields: object) -> Claim:
    return Claim.model_validate(
        {"task_id": uuid.uuid4(), "created_at": T0, "touched_at": T0, "published": False} | fields
    )


def test_an_unpublished_claim_is_leased_to_its_publisher_for_the_lease() -> None:
    c = claim()
    assert c.lease_left_s(6.0, T0 + timedelta(seconds=2)) == 4.0
    assert c.lease_left_s(6.0, T0 + timedelta(seconds=6)) == 0.0
    assert c.lease_left_s(6.0, T0 + timedelta(hours=1)) == 0.0


def test_a_claim_written_before_leases_counts_as_answered() -> None:
    legacy = Claim.model_validate_json(
        f'{{"task_id": "{uuid.uuid4()}", "created_at": "{T0.isoformat()}"}}'
    )
    assert legacy.published and legacy.request is None


def test_the_fingerprint_tells_requests_apart_without_holding_the_file_name() -> None:
    m4a = AudioExtension.M4A
    same = request_fingerprint("f1", m4a, "visit of Mrs Smith.m4a")
    assert same == request_fingerprint("f1", m4a, "visit of Mrs Smith.m4a")
    assert same != request_fingerprint("f2", m4a, "visit of Mrs Smith.m4a")
    assert same != request_fingerprint("f1", m4a, None)
    assert same != request_fingerprint(None, m4a, "visit of Mrs Smith.m4a")
    assert "Smith" not in same


def test_a_different_callback_is_a_different_request() -> None:
    """A retry with the same key must not silently drop or swap its callback URL."""
    m4a = AudioExtension.M4A
    plain = request_fingerprint("f1", m4a, "a.m4a")
    called = request_fingerprint("f1", m4a, "a.m4a", "https://hooks.example.com/a?t=1")
    assert called != plain
    assert called != request_fingerprint("f1", m4a, "a.m4a", "https://hooks.example.com/b")
    assert "hooks" not in called
    # Claims written before callbacks existed keep matching a request without one.
    legacy = hashlib.sha256(json.dumps(["f1", "m4a", "a.m4a"]).encode()).hexdigest()
    assert plain == legacy
