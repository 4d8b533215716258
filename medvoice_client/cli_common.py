"""What the ``medvoice`` commands share: exit codes, settings options, error mapping."""

import functools
from collections.abc import Callable
from enum import IntEnum
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from medvoice_client.errors import ApiError, MedVoiceError, Unreachable
from medvoice_client.models import ExportFormat

URL_ENV = "MV_API_URL"
TOKEN_ENV = "MV_TOKEN"  # noqa: S105 - a variable name, not a token
DEFAULT_URL = "http://127.0.0.1:8000"


class ExitCode(IntEnum):
    """What scripts can rely on."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3


stderr = Console(stderr=True, highlight=False, soft_wrap=True)

UrlOpt = Annotated[
    str, typer.Option("--url", envvar=URL_ENV, help="the API's base URL", show_envvar=True)
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        help="bearer token (prefer the environment: argv is visible to ps)",
        show_envvar=True,
        show_default=False,
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option("--user", help="the user id to act for (default: the token's subject)"),
]
FormatOpt = Annotated[
    ExportFormat, typer.Option("--format", "-f", help="json, txt, srt or vtt", case_sensitive=False)
]

P = ParamSpec("P")
R = TypeVar("R")


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Map the client's exceptions to the exit codes (and a one-line reason on stderr)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Unreachable as exc:
            fail(str(exc), ExitCode.UNREACHABLE)
        except ApiError as exc:
            fail(f"the API refused: {exc}", ExitCode.FAILED)
        except MedVoiceError as exc:
            fail(str(exc), ExitCode.FAILED)
        except ValidationError as exc:  # an answer that is not what the API documents
            fail(f"unexpected answer from the API: {exc.error_count()} error(s)", ExitCode.FAILED)
        except ValueError as exc:  # a parameter the client refused before sending anything
            fail(str(exc), ExitCode.USAGE)

    return run


def fail(message: str, code: ExitCode) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    stderr.print(f"medvoice: {message}", markup=False)
    raise typer.Exit(int(code))
