"""What the client raises: the API's refusals with their reason, and an unreachable API."""

from typing import Any


class MedVoiceError(Exception):
    """Any failure of a MedVoice client call."""


class ApiError(MedVoiceError):
    """The API answered with an error status; ``detail`` is its reason (``{"detail": ...}``)."""

    def __init__(
        self,
        status_code: int,
        detail: str | list[dict[str, Any]],
        *,
        method: str = "",
        path: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.path = path
        self.retry_after_s = retry_after_s
        super().__init__(f"HTTP {status_code}: {self.reason}")

    @property
    def reason(self) -> str:
        """The detail as one line (validation errors as ``location: message`` pairs)."""
        if isinstance(self.detail, str):
            return self.detail
        parts = []
        for item in self.detail:
            loc = ".".join(str(p) for p in item.get("loc", ()))
            parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "; ".join(parts)


class Unreachable(MedVoiceError):
    """The API could not be reached (connection refused, name resolution, TLS, timeouts)."""


class WaitTimeout(MedVoiceError):
    """A task did not reach a final status within the time given."""
