"""AWS Signature Version 4 for one request shape: an S3 ``HEAD Object`` without a body.

botocore's signer is general (any service, method, query and header set) and costs about
54 µs per request, most of it in ``email.message`` headers and URL parsing; the API signs
one HEAD per submission. This produces the same headers for that one shape in a few
microseconds, reusing the day's signing key. ``tests/unit/common/test_sigv4.py`` checks
it against botocore's ``S3SigV4Auth`` byte for byte, for session and static credentials.
Credentials still come from botocore's chain (static keys, IRSA, instance roles: a
refreshable set is read again at every call).
"""

import hashlib
import hmac
from datetime import UTC, datetime
from typing import NamedTuple

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # the payload hash of a request without body


class Credentials(NamedTuple):
    """One frozen set of AWS credentials (botocore's ``ReadOnlyCredentials`` fits)."""

    access_key: str
    secret_key: str
    token: str | None


class HeadSigner:
    """Signs ``HEAD`` requests to one S3 host in one region."""

    def __init__(self, host: str, region: str) -> None:
        """``host``: the Host header as sent (with ``:port`` when not the scheme's default)."""
        self.host = host
        self.region = region
        self._scope_tail = f"/{region}/s3/aws4_request"
        self._key: tuple[str, str, bytes] = ("", "", b"")  # (date, secret, signing key)

    def _signing_key(self, date: str, secret: str) -> bytes:
        cached_date, cached_secret, key = self._key
        if cached_date == date and hmac.compare_digest(cached_secret, secret):
            return key
        k = hmac.digest(f"AWS4{secret}".encode(), date.encode(), "sha256")
        for part in (self.region, "s3", "aws4_request"):
            k = hmac.digest(k, part.encode(), "sha256")
        self._key = (date, secret, k)
        return k

    def headers(self, path: str, creds: Credentials, now: datetime | None = None) -> list[str]:
        """The request's header lines (``Name: value``) for ``HEAD path``, Host first.

        ``path`` is the URI path as sent, already percent-encoded (S3 signs it as is).
        """
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        date = stamp[:8]
        names = "host;x-amz-content-sha256;x-amz-date"
        canonical_headers = (
            f"host:{self.host}\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{stamp}\n"
        )
        if creds.token:
            names += ";x-amz-security-token"
            canonical_headers += f"x-amz-security-token:{creds.token}\n"
        canonical = f"HEAD\n{path}\n\n{canonical_headers}\n{names}\n{EMPTY_SHA256}"
        scope = date + self._scope_tail
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = self._signing_key(date, creds.secret_key)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        lines = [
            f"Host: {self.host}",
            f"X-Amz-Date: {stamp}",
            f"X-Amz-Content-SHA256: {EMPTY_SHA256}",
            f"Authorization: {ALGORITHM} Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}",
        ]
        if creds.token:
            lines.append(f"X-Amz-Security-Token: {creds.token}")
        return lines
