"""One webhook attempt over HTTPS, with the callback's addresses checked as it connects.

Per-submission callbacks go through a session whose resolver refuses private, loopback,
link-local, multicast and reserved addresses (unless ``allow_private``): the connection is
made to exactly the addresses that passed, so a DNS answer that changed since the API checked
the URL (rebinding) cannot reach an internal service. Redirects are never followed. The
per-deployment URL, set by the operator, uses a session without that check.
"""

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from medvoice_common.webhook_settings import WebhookOptions
from medvoice_common.webhook_url import refused_address
from processors.webhooks import metrics

log = logging.getLogger(__name__)
USER_AGENT = "MedVoice-Webhooks/1"
RETRYABLE_4XX = frozenset({408, 425, 429})


class AddressRefused(Exception):
    """The callback's host resolved to an address it may not reach."""


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing any answer that holds a non-public address."""

    def __init__(self) -> None:
        """Resolve with aiohttp's threaded (getaddrinfo) resolver."""
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses; raises AddressRefused if any of them is not public."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if refused_address(result["host"]) is not None:
                raise AddressRefused(result["host"])
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


@dataclass(frozen=True)
class Attempt:
    """How one attempt went: delivered, or why not and whether to try again."""

    delivered: bool
    retry: bool = False
    reason: metrics.Reason | None = None
    http_status: int | None = None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def classify_status(code: int) -> Attempt:
    """The attempt an HTTP answer makes: 2xx delivered; 5xx, 408, 425, 429 tried again;
    redirects and other 4xx given up (the receiver refuses this delivery)."""
    if 200 <= code < 300:
        return Attempt(delivered=True, http_status=code)
    if 300 <= code < 400:
        return Attempt(delivered=False, reason="redirect", http_status=code)
    if code >= 500:
        return Attempt(delivered=False, retry=True, reason="status_5xx", http_status=code)
    return Attempt(
        delivered=False, retry=code in RETRYABLE_4XX, reason="status_4xx", http_status=code
    )


class Sender:
    """POSTs signed bodies; one connection pool for callbacks, one for the deployment URL."""

    def __init__(self, options: WebhookOptions) -> None:
        """Build the TLS context (system CAs plus ``ca_file``); sessions open in ``start``."""
        self.options = options
        self._ssl = ssl.create_default_context()
        if options.ca_file is not None:
            self._ssl.load_verify_locations(cafile=str(options.ca_file))
        self._callbacks: aiohttp.ClientSession | None = None
        self._deployment: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the two sessions (inside the running loop)."""
        timeout = aiohttp.ClientTimeout(total=self.options.timeout_s)
        resolver = None if self.options.allow_private else GuardedResolver()
        self._callbacks = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl, resolver=resolver, use_dns_cache=False),
            timeout=timeout,
        )
        self._deployment = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=timeout
        )

    async def close(self) -> None:
        """Close both sessions."""
        for session in (self._callbacks, self._deployment):
            if session is not None:
                await session.close()

    async def post(
        self, target: metrics.Target, url: str, headers: dict[str, str], body: bytes
    ) -> Attempt:
        """One attempt; never raises for a network or HTTP failure (see :class:`Attempt`)."""
        session = self._callbacks if target == "callback" else self._deployment
        if session is None:
            raise RuntimeError("Sender.start() was not called")
        host = (urlsplit(url).hostname or "").rstrip(".")
        if (
            target == "callback"
            and not self.options.allow_private
            and _ip_literal(host)  # aiohttp does not resolve a literal: check it here
            and refused_address(host) is not None
        ):
            return Attempt(delivered=False, reason="refused_address")
        started = time.perf_counter()
        try:
            async with session.post(
                url,
                data=body,
                headers={**headers, "content-type": "application/json", "user-agent": USER_AGENT},
                allow_redirects=False,
            ) as resp:
                await resp.read()
                return classify_status(resp.status)
        except Exception as exc:  # noqa: BLE001 - every failure is an outcome to count
            return _failure(exc)
        finally:
            metrics.SECONDS.labels(target).observe(time.perf_counter() - started)


def _failure(exc: BaseException) -> Attempt:
    if _caused_by(exc, AddressRefused):
        return Attempt(delivered=False, reason="refused_address")
    if isinstance(exc, aiohttp.ClientSSLError) or _caused_by(exc, ssl.SSLError):
        return Attempt(delivered=False, retry=True, reason="tls")
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return Attempt(delivered=False, retry=True, reason="timeout")
    if isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        return Attempt(delivered=False, retry=True, reason="connect")
    log.warning("webhook attempt failed unexpectedly", extra={"error": type(exc).__name__})
    return Attempt(delivered=False, retry=True, reason="other")
