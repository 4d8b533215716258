"""Operators' and developers' commands: ``medvoice token`` and ``medvoice dlq list|replay``.

``token`` mints an HS256 token as ``python -m producer_api.token`` does (same claims); the
secret comes from ``MEDVOICE_AUTH__HS256_SECRET`` (the API's own setting, so exporting it
breaks nothing) or ``--secret-file``, never from argv. ``dlq`` reads the worker's Kafka
settings (``MEDVOICE_KAFKA__*``) and wraps :mod:`processors.replay`; it prints ids, error
codes and times, never file names or text.
"""

import asyncio
import os
import re
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from medvoice_client.cli_common import ExitCode, fail

if TYPE_CHECKING:
    from processors.settings import WorkerSettings

SECRET_ENV = "MEDVOICE_AUTH__HS256_SECRET"  # noqa: S105 - a variable name, not a secret
T = TypeVar("T")
dlq_app = typer.Typer(
    help="The dead-letter topic (operators; Kafka settings from MEDVOICE_KAFKA__*).",
    no_args_is_help=True,
)


def token_command(
    sub: Annotated[str, typer.Option("--sub", help="the user id the token acts for")],
    ttl: Annotated[int, typer.Option("--ttl", min=1, help="seconds until it expires")] = 3600,
    admin: Annotated[bool, typer.Option("--admin", help="the admin scope (any user)")] = False,
    aud: Annotated[
        str | None, typer.Option("--aud", envvar="MEDVOICE_AUTH__AUDIENCE", help="audience")
    ] = None,
    iss: Annotated[
        str | None, typer.Option("--iss", envvar="MEDVOICE_AUTH__ISSUER", help="issuer")
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file", exists=True, dir_okay=False, help=f"HS256 secret (else ${SECRET_ENV})"
        ),
    ] = None,
) -> None:
    """Mint a development token (HS256) for MV_TOKEN: `export MV_TOKEN=$(medvoice token ...)`."""
    import jwt

    from producer_api.token import claims
    from schemas.ids import ID_PATTERN

    if not re.match(ID_PATTERN, sub):
        fail("--sub must be a user id (letters, digits, - and _; 64 at most)", ExitCode.USAGE)
    secret = (
        secret_file.read_text(encoding="utf-8").strip()
        if secret_file is not None
        else os.environ.get(SECRET_ENV, "")
    )
    if not secret:
        fail(f"set {SECRET_ENV}, or give --secret-file", ExitCode.USAGE)
    payload = claims(sub, ttl_s=ttl, admin=admin, audience=aud, issuer=iss)
    sys.stdout.write(jwt.encode(payload, secret, algorithm="HS256") + "\n")


def _settings() -> "WorkerSettings":
    from processors.settings import WorkerSettings

    try:
        return WorkerSettings()
    except ValueError as exc:  # pydantic's ValidationError and unknown MEDVOICE_* names
        fail(f"invalid settings:\n{exc}", ExitCode.USAGE)


def _run_kafka(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; an unreachable broker exits 3."""
    from aiokafka.errors import KafkaConnectionError

    try:
        return asyncio.run(work)
    except KafkaConnectionError as exc:
        fail(f"Kafka could not be reached: {exc}", ExitCode.UNREACHABLE)


@dlq_app.command("list")
def dlq_list(
    code: Annotated[
        list[str] | None, typer.Option("--code", help="only this error code (repeat)")
    ] = None,
) -> None:
    """Dead-lettered records: partition, offset, task id, error code, attempt, replays, time."""
    from processors.replay import dead_letters

    settings = _settings()
    found = _run_kafka(dead_letters(settings))
    codes = set(code) if code else None
    shown = 0
    for letter in found:
        if codes is not None and letter.code not in codes:
            continue
        when = datetime.fromtimestamp(letter.timestamp_ms / 1000, UTC).isoformat()
        sys.stdout.write(
            f"{letter.partition}\t{letter.offset}\t{letter.task_id or '-'}\t{letter.code or '-'}"
            f"\t{letter.attempt}\t{letter.replays}\t{when}\n"
        )
        shown += 1
    typer.echo(f"{shown} dead-lettered record(s) on {settings.topics.dlq}", err=True)


@dlq_app.command("replay")
def dlq_replay(
    code: Annotated[
        list[str] | None, typer.Option("--code", help="replay only this error code (repeat)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, send nothing")] = False,
) -> None:
    """Send dead-lettered tasks back to audio.submitted (never invalid_event records)."""
    from processors.replay import replay

    settings = _settings()
    n = _run_kafka(replay(settings, codes=set(code) if code else None, dry_run=dry_run))
    verb = "would replay" if dry_run else "replayed"
    sys.stdout.write(f"{verb} {n} dead-lettered task(s) to {settings.topics.submitted}\n")
