"""Webhook signatures as Standard Webhooks (https://www.standardwebhooks.com) defines them.

Every delivery carries three headers:

- ``webhook-id``: the delivery's id (the status event's ``event_id``; the same on a retry, so
  a receiver dedupes by it);
- ``webhook-timestamp``: when this attempt was signed, in unix seconds;
- ``webhook-signature``: ``v1,<base64 of HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``
  (space-separated when several secrets sign during a rotation).

The secret is ``MEDVOICE_WEBHOOKS__SECRET``: at least 32 bytes of text, or ``whsec_`` followed
by the base64 of at least 32 random bytes (the form Standard Webhooks libraries take).
A receiver checks the signature over the raw body bytes *before* parsing them, compares in
constant time, and refuses a timestamp too far from its clock (replays).
"""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of the encoded form, not a secret
MIN_SECRET_BYTES = 32
DEFAULT_TOLERANCE_S = 300  # Standard Webhooks' recommendation: five minutes either way


class WebhookVerificationError(ValueError):
    """A delivery whose headers or signature do not check out."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key of ``secret``: ``whsec_<base64>`` decoded, otherwise its UTF-8 bytes.

    Raises:
        ValueError: the ``whsec_`` form is not base64.
    """
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a whsec_ secret must be base64 after the prefix") from exc


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of ``secret`` as this deployment signs with it (at least 32 bytes).

    Raises:
        ValueError: the key is shorter than 32 bytes, or the ``whsec_`` form is not base64.
    """
    key = decode_secret(secret)
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"a webhook secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(key: bytes, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of a delivery of ``body`` (signed now unless ``timestamp``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature(key, msg_id, ts, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a delivery as a receiver should; returns quietly when it is genuine.

    ``headers`` are looked up by their lower-case names (as ASGI and most frameworks give
    them); ``body`` is the raw request body, unparsed.

    Raises:
        WebhookVerificationError: a header is missing, the timestamp is outside
            ``tolerance_s`` of ``now``, or no ``v1`` signature matches.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered[ID_HEADER]
        ts_text = lowered[TIMESTAMP_HEADER]
        given = lowered[SIGNATURE_HEADER]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from exc
    try:
        ts = int(ts_text)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too old or in the future")
    expected = signature(decode_secret(secret), msg_id, ts, body).encode()
    for candidate in given.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no matching signature")
