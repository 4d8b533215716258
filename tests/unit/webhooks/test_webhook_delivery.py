"""One status delivered to a real HTTPS receiver (uvicorn, a throw-away CA): signed, retried
with backoff after failures, given up at the limit; the callback's address checked again
as the deliverer connects; who receives what."""

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from medvoice_common.webhook_settings import WebhookOptions
from medvoice_common.webhook_signature import verify
from processors.webhooks.deliverer import Deliverer, Target, targets
from processors.webhooks.payload import payload
from processors.webhooks.sender import Sender, classify_status
from schemas.events import ErrorInfo, TaskStatusChanged, TranscriptSummary
from schemas.status import TaskStatus
from tests.fixtures.webhook_receiver import WebhookReceiver

SECRET = "a-webhook-secret-of-at-least-32-bytes!!"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET, tmp_path).start()
    yield server
    server.stop()


def options(receiver: WebhookReceiver, **changes: object) -> WebhookOptions:
    fields: dict[str, object] = {
        "secret": SECRET,
        "ca_file": receiver.ca_file,
        "allowed_hosts": "localhost",
        "allow_private": True,
        "retry_base_s": 0.05,
        "retry_max_backoff_s": 0.2,
        "max_retry_s": 30.0,
    }
    return WebhookOptions.model_validate(fields | changes)


def completed(user: str = "dr_a", callback: str | None = None) -> TaskStatusChanged:
    return TaskStatusChanged(
        task_id=uuid.uuid4(),
        user_id=user,
        file_id="rec1",
        status=TaskStatus.COMPLETED,
        submitted_at=datetime.now(UTC),
        transcript=TranscriptSummary(
            language="en", duration_s=3.5, word_count=9, transcript_uri="s3://b/t.json"
        ),
        callback_url=callback,
    )


@pytest.fixture
async def sender_of(receiver: WebhookReceiver) -> AsyncIterator[list[Sender]]:
    made: list[Sender] = []
    yield made
    for sender in made:
        await sender.close()


async def deliverer(opts: WebhookOptions, made: list[Sender]) -> Deliverer:
    sender = Sender(opts)
    await sender.start()
    made.append(sender)
    return Deliverer(opts, consumer=None, sender=sender)


def counted(target: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "medvoice_webhook_deliveries_total", {"target": target, "outcome": outcome}
    )
    return value or 0.0


async def test_delivered_after_failures_signed_with_one_id(
    receiver: WebhookReceiver, sender_of: list[Sender]
) -> None:
    receiver.fail_first["hook"] = 2
    opts = options(receiver)
    d = await deliverer(opts, sender_of)
    change = completed(callback=receiver.url("hook?token=abc"))
    before = {o: counted("callback", o) for o in ("retried", "delivered")}
    assert await d.deliver(change, Target("callback", change.callback_url or ""), payload(change))
    attempts = receiver.of("hook")
    assert [a.answered for a in attempts] == [503, 503, 204]
    assert not receiver.bad_signatures
    assert {a.headers["webhook-id"] for a in attempts} == {str(change.event_id)}
    assert attempts[-1].query == "token=abc"
    for attempt in attempts:
        verify(SECRET, attempt.headers, attempt.body)
    assert counted("callback", "retried") - before["retried"] == 2
    assert counted("callback", "delivered") - before["delivered"] == 1


async def test_given_up_when_the_retry_period_is_over(
    receiver: WebhookReceiver, sender_of: list[Sender]
) -> None:
    receiver.fail_first["down"] = 10_000
    opts = options(receiver, max_retry_s=0.3)
    d = await deliverer(opts, sender_of)
    change = completed(callback=receiver.url("down"))
    before = counted("callback", "given_up")
    assert not await d.deliver(change, Target("callback", receiver.url("down")), payload(change))
    assert len(receiver.of("down")) >= 2
    assert counted("callback", "given_up") - before == 1


async def test_a_private_address_is_refused_as_the_deliverer_connects(
    receiver: WebhookReceiver, sender_of: list[Sender]
) -> None:
    # The API accepted the URL (say DNS answered a public address then); now it is loopback.
    opts = options(receiver, allow_private=False, allowed_hosts="localhost,127.0.0.1")
    d = await deliverer(opts, sender_of)
    for host in ("localhost", "127.0.0.1"):
        url = receiver.url("private", host=host)
        change = completed(callback=url)
        assert not await d.deliver(change, Target("callback", url), payload(change))
    assert receiver.of("private") == []


async def test_an_untrusted_certificate_is_a_tls_failure(
    receiver: WebhookReceiver, sender_of: list[Sender]
) -> None:
    opts = options(receiver, ca_file=None)
    sender = Sender(opts)
    await sender.start()
    sender_of.append(sender)
    attempt = await sender.post("callback", receiver.url("tls"), {}, b"{}")
    assert (attempt.delivered, attempt.retry, attempt.reason) == (False, True, "tls")
    assert receiver.of("tls") == []


def test_the_answer_decides_retry_or_give_up() -> None:
    assert classify_status(204).delivered
    assert classify_status(503).retry and classify_status(429).retry
    assert not classify_status(400).retry and not classify_status(410).retry
    assert classify_status(302).reason == "redirect" and not classify_status(302).retry


def test_the_payload_is_the_status_without_transcript_text() -> None:
    change = completed(callback="https://hooks.example.com/x?token=secret")
    body = payload(change).decode()
    assert '"type":"task.completed"' in body
    assert '"transcript_uri":"s3://b/t.json"' in body
    assert '"text"' not in body and "callback" not in body and "token=secret" not in body
    failed = change.model_copy(
        update={
            "status": TaskStatus.FAILED,
            "transcript": None,
            "error": ErrorInfo(code="x", message="y"),
        }
    )
    assert '"type":"task.failed"' in payload(failed).decode()


def test_targets_are_the_deployment_url_and_the_task_s_own_callback_only() -> None:
    opts = WebhookOptions(
        secret=SECRET,
        url="https://ops.example.com/all",
        allowed_hosts="hooks.example.com",
    )
    mine = completed(callback="https://hooks.example.com/a")
    assert targets(mine, opts) == [
        Target("deployment", "https://ops.example.com/all"),
        Target("callback", "https://hooks.example.com/a"),
    ]
    assert targets(completed(callback=None), opts) == [
        Target("deployment", "https://ops.example.com/all")
    ]
    # Not final: nothing; a host no longer allowed: not the callback.
    assert targets(mine.model_copy(update={"status": TaskStatus.PROCESSING}), opts) == []
    moved = completed(callback="https://elsewhere.example.com/a")
    assert targets(moved, opts) == [Target("deployment", "https://ops.example.com/all")]
