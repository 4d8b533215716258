"""``python -m producer_api.token``: mint a bearer token for the API (operators and tests).

HS256 with the shared secret (read from ``MEDVOICE_AUTH__HS256_SECRET`` or a file, never
from the command line where ``ps`` and shell history would keep it), or RS256/ES256 with a
private key file whose public half the API is configured with.
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from producer_api.settings import AuthSettings
from schemas.ids import ID_PATTERN

DEFAULT_TTL_S = 3600


def claims(
    subject: str,
    *,
    ttl_s: int = DEFAULT_TTL_S,
    admin: bool = False,
    audience: str | None = None,
    issuer: str | None = None,
    admin_scope: str = AuthSettings.model_fields["admin_scope"].default,
) -> dict[str, Any]:
    """The claims of a token for ``subject``, valid for ``ttl_s`` seconds from now."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + ttl_s}
    if admin:
        payload["scope"] = admin_scope
    if audience:
        payload["aud"] = audience
    if issuer:
        payload["iss"] = issuer
    return payload


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m producer_api.token", description=__doc__)
    p.add_argument("--sub", required=True, help="the user id the token acts for")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL_S, help="seconds until it expires")
    p.add_argument("--admin", action="store_true", help="add the admin scope (any user)")
    p.add_argument("--aud", default=os.environ.get("MEDVOICE_AUTH__AUDIENCE"))
    p.add_argument("--iss", default=os.environ.get("MEDVOICE_AUTH__ISSUER"))
    p.add_argument("--secret-file", type=Path, help="HS256 secret (default: the env setting)")
    p.add_argument("--private-key", type=Path, help="PEM private key (RS256/ES256)")
    p.add_argument("--alg", default=None, help="HS256 (secret), RS256 or ES256 (private key)")
    p.add_argument("--kid", default=None, help="key id header, when the API uses a JWKS")
    return p


def main(argv: list[str] | None = None) -> int:
    """Write one token to stdout; returns the exit status."""
    args = _parser().parse_args(argv)
    if not re.match(ID_PATTERN, args.sub):
        sys.stderr.write("--sub must be a user id (letters, digits, - and _; 64 at most)\n")
        return 2
    headers = {"kid": args.kid} if args.kid else None
    key: Any
    if args.private_key is not None:
        key = serialization.load_pem_private_key(args.private_key.read_bytes(), password=None)
        alg = args.alg or ("ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256")
    else:
        secret = (
            args.secret_file.read_text(encoding="utf-8").strip()
            if args.secret_file
            else os.environ.get("MEDVOICE_AUTH__HS256_SECRET", "")
        )
        if not secret:
            sys.stderr.write("set MEDVOICE_AUTH__HS256_SECRET, or give --secret-file\n")
            return 2
        key, alg = secret, args.alg or "HS256"
    payload = claims(args.sub, ttl_s=args.ttl, admin=args.admin, audience=args.aud, issuer=args.iss)
    sys.stdout.write(jwt.encode(payload, key, algorithm=alg, headers=headers) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
