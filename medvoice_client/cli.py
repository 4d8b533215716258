"""``medvoice``: transcribe recordings and read tasks from the command line.

Settings come from flags or the environment: ``MV_API_URL`` (default
``http://127.0.0.1:8000``) and ``MV_TOKEN`` (a bearer token; ``medvoice token`` mints a
development one). They are deliberately not ``MEDVOICE_*`` names, which every MedVoice
process checks and refuses when unknown.

Exit codes: 0 all completed (or submitted, without ``--wait``), 1 some failed (refused by
the API, failed in the pipeline, not final in time), 2 usage, 3 the API (or Kafka, for
``dlq``) could not be reached.

Status lines on stderr carry the local file's name, task ids and statuses, never transcript
text; transcripts go to ``--out`` files or, on request, to stdout.
"""

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from medvoice_client import _protocol
from medvoice_client.cli_common import (
    DEFAULT_URL,
    ExitCode,
    FormatOpt,
    TokenOpt,
    UrlOpt,
    UserOpt,
    fail,
    guarded,
    stderr,
)
from medvoice_client.cli_ops import dlq_app, token_command
from medvoice_client.client import Client
from medvoice_client.errors import ApiError
from medvoice_client.models import ExportFormat, ListedTask, Task, TaskStatus
from medvoice_client.transcribe import Options, transcribe_all

app = typer.Typer(
    name="medvoice",
    help="Transcribe dictations with the MedVoice API; read tasks and transcripts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _user_for(token: str | None, user: str | None) -> str:
    found = user or (_protocol.user_of(token) if token else None)
    if not found:
        fail("give --user (or a token whose subject is the user)", ExitCode.USAGE)
    return str(found)


def _task_line(task: Task | ListedTask) -> str:
    """A task as one tab-separated line: id, status, updated, attempt, error code."""
    error = task.error.code if task.error is not None else "-"
    return f"{task.task_id}\t{task.status}\t{task.updated_at.isoformat()}\t{task.attempt}\t{error}"


@app.command()
@guarded
def transcribe(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="recordings (m4a, mp3, wav, ...)"
        ),
    ],
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="follow each task to its end")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", file_okay=False, help="write transcripts here (implies --wait)"
        ),
    ] = None,
    fmt: FormatOpt = ExportFormat.TXT,
    extension: Annotated[
        str | None, typer.Option("--extension", help="the container, when not the file suffix")
    ] = None,
    presigned: Annotated[
        bool, typer.Option("--presigned", help="upload straight to S3 (presigned PUT)")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="seconds to wait for each task")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    user: UserOpt = None,
) -> None:
    """Upload, submit and (with --wait or --out) follow recordings and write transcripts.

    One line per file on stdout: task id, status, transcript file, recording. With --wait,
    one file and no --out, the transcript itself goes to stdout instead.
    """
    wait = wait or out is not None
    if wait and out is None and len(files) > 1:
        fail("give --out DIR to wait for several files", ExitCode.USAGE)
    options = Options(
        user_id=_user_for(token, user),
        wait=wait,
        out=out,
        fmt=fmt,
        extension=extension,
        presigned=presigned,
        timeout_s=timeout,
    )
    outcomes = asyncio.run(transcribe_all(url, token, files, options, stderr))
    if wait and out is None:
        body = outcomes[0].transcript
        if body is not None:
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
    else:
        for outcome in outcomes:
            sys.stdout.write(outcome.line() + "\n")
    if any(o.unreachable for o in outcomes):
        raise typer.Exit(ExitCode.UNREACHABLE)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(ExitCode.FAILED)


@app.command()
@guarded
def status(
    task_id: Annotated[str, typer.Argument(help="the task id")],
    wait: Annotated[bool, typer.Option("--wait", help="follow it to its end")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="the API's body (a completed task's text too)")
    ] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """A task's status: id, status, updated, attempt, error code (exit 1 when failed)."""
    with Client(url, token) as mv:
        if wait:
            task = None
            for task in mv.follow(task_id):
                stderr.print(f"task {task.task_id}: {task.status}", markup=False)
            task = task or mv.task(task_id)
        else:
            task = mv.task(task_id)
    sys.stdout.write((task.model_dump_json() if json_out else _task_line(task)) + "\n")
    if task.status is TaskStatus.FAILED:
        if task.error is not None:
            stderr.print(f"task {task.task_id} failed: {task.error.code}", markup=False)
        raise typer.Exit(ExitCode.FAILED)


@app.command()
@guarded
def transcript(
    task_id: Annotated[str, typer.Argument(help="the task id")],
    fmt: FormatOpt = ExportFormat.TXT,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="write it to this file")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """A completed task's transcript (json, txt, srt, vtt) to stdout or --out."""
    with Client(url, token) as mv:
        body = mv.transcript_bytes(task_id, fmt)
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        out.write_bytes(body)
        stderr.print(f"task {task_id}: {fmt} transcript written", markup=False)


@app.command()
@guarded
def tasks(
    status_filter: Annotated[
        TaskStatus | None, typer.Option("--status", help="only tasks in this status")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="only tasks submitted since (ISO 8601)")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
    cursor: Annotated[str | None, typer.Option("--cursor", help="the page after this")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
    user: UserOpt = None,
) -> None:
    """The user's tasks, newest first (one line each, as `status` prints them)."""
    with Client(url, token) as mv:
        try:
            page = mv.tasks(
                user_id=_user_for(token, user),
                status=status_filter,
                since=since,
                limit=limit,
                cursor=cursor,
            )
        except ApiError as exc:
            if exc.status_code in (404, 405) and exc.detail == "Not Found":
                fail("this API has no task list yet (GET /users/{user_id}/tasks)", ExitCode.FAILED)
            raise
    for task in page.tasks:
        sys.stdout.write(_task_line(task) + "\n")
    if page.next_cursor:
        stderr.print(f"more: --cursor {page.next_cursor}", markup=False)


app.command("token")(token_command)
app.add_typer(dlq_app, name="dlq")


def main() -> None:
    """The console script."""
    app()


if __name__ == "__main__":
    main()
