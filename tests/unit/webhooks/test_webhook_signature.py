"""Webhook signatures: Standard Webhooks' published example, a round trip, and every refusal."""

import base64

import pytest

from medvoice_common.webhook_settings import WebhookOptions
from medvoice_common.webhook_signature import (
    WebhookVerificationError,
    decode_secret,
    secret_bytes,
    sign,
    signature,
    verify,
)

SECRET = "a-webhook-secret-of-at-least-32-bytes!!"
BODY = b'{"type":"task.completed","data":{"task_id":"t"}}'


def test_the_standard_webhooks_example_signature() -> None:
    # The example in the Standard Webhooks specification (and its libraries' tests).
    key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    got = signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_signed_delivery_verifies() -> None:
    headers = sign(secret_bytes(SECRET), "evt-1", BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    verify(SECRET, headers, BODY)
    verify(SECRET, {k.title(): v for k, v in headers.items()}, BODY)  # any header case


def test_whsec_and_plain_secrets_sign_alike_for_the_same_key() -> None:
    raw = bytes(range(40))
    whsec = "whsec_" + base64.b64encode(raw).decode()
    assert secret_bytes(whsec) == raw
    headers = sign(raw, "evt-2", BODY, timestamp=1_700_000_000)
    verify(whsec, headers, BODY, now=1_700_000_010)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": BODY + b" "}, "no matching signature"),
        ({"secret": SECRET + "x"}, "no matching signature"),
        ({"webhook-id": "evt-other"}, "no matching signature"),
        ({"now": 1_700_000_000 + 301}, "too old"),
        ({"now": 1_700_000_000 - 301}, "in the future"),
        ({"drop": "webhook-signature"}, "missing header webhook-signature"),
        ({"webhook-timestamp": "soon"}, "not an integer"),
        ({"webhook-signature": "v2,abc"}, "no matching signature"),
    ],
)
def test_refusals(change: dict[str, object], message: str) -> None:
    headers = sign(secret_bytes(SECRET), "evt-3", BODY, timestamp=1_700_000_000)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if name in change:
            headers[name] = str(change[name])
    headers.pop(str(change.get("drop", "")), None)
    now = float(str(change.get("now", 1_700_000_000)))
    body = change.get("body", BODY)
    assert isinstance(body, bytes)
    with pytest.raises(WebhookVerificationError, match=message):
        verify(str(change.get("secret", SECRET)), headers, body, now=now)


def test_one_of_several_signatures_may_match_during_a_rotation() -> None:
    headers = sign(secret_bytes(SECRET), "evt-4", BODY)
    old = sign(secret_bytes("an-older-secret-also-32-bytes-long!!"), "evt-4", BODY)
    headers["webhook-signature"] = f"{old['webhook-signature']} {headers['webhook-signature']}"
    verify(SECRET, headers, BODY)


@pytest.mark.parametrize(
    "secret", ["short", "whsec_" + base64.b64encode(b"x" * 31).decode(), "whsec_!!"]
)
def test_the_deployment_refuses_a_weak_or_malformed_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="MEDVOICE_WEBHOOKS__SECRET"):
        WebhookOptions(secret=secret)
