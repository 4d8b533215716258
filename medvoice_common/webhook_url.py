"""Which callback URLs may be called: https, an allowed host, a public address.

The API checks a submission's ``callback_url`` with :func:`check_callback` (422 with the
reason when refused); the deliverer checks the addresses again when it connects
(:func:`refused_address` in its resolver), since DNS may answer differently by then.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048


class CallbackRefused(ValueError):
    """A callback URL that may not be called; the message says why (safe to show the caller)."""


def parse_callback(url: str, allowed_hosts: tuple[str, ...]) -> SplitResult:
    """Check the URL's form and host against the allow-list (no DNS).

    Raises:
        CallbackRefused: per-submission callbacks are off, or the URL is not https, has
            credentials, or names a host not in ``allowed_hosts``.
    """
    if not allowed_hosts:
        raise CallbackRefused(
            "callback_url is not accepted by this deployment (no allowed callback hosts)"
        )
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused("callback_url is not a valid URL") from exc
    if parts.scheme != "https":
        raise CallbackRefused("callback_url must be an https:// URL")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise CallbackRefused("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url may not carry credentials before the host")
    if parts.fragment:
        raise CallbackRefused("callback_url may not have a #fragment")
    if port == 0:
        raise CallbackRefused("callback_url has no valid port")
    if not host_allowed(host, allowed_hosts):
        raise CallbackRefused("callback_url's host is not in the allowed callback hosts")
    return parts


def host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether ``host`` is listed, or under a listed ``*.domain``."""
    host = host.lower().rstrip(".")
    for pattern in allowed_hosts:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def refused_address(address: str) -> str | None:
    """Why ``address`` may not be called (private, loopback, ...), or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved or ip.is_unspecified),
        ("private", ip.is_private),
    ):
        if flag:
            return kind
    if not ip.is_global:
        return "reserved"  # shared (CGNAT), documentation and other non-global ranges
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal: itself).

    Raises:
        CallbackRefused: the name does not resolve.
    """
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise CallbackRefused("callback_url's host does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


async def check_callback(url: str, allowed_hosts: tuple[str, ...], allow_private: bool) -> None:
    """Check a submission's callback URL: form, allow-list, and every address it resolves to.

    Raises:
        CallbackRefused: with the reason.
    """
    parts = parse_callback(url, allowed_hosts)
    if allow_private:
        return
    host = (parts.hostname or "").rstrip(".")
    for address in await resolve(host, parts.port or 443):
        kind = refused_address(address)
        if kind is not None:
            raise CallbackRefused(f"callback_url's host resolves to a {kind} address")
