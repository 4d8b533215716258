"""``medvoice transcribe``: each file uploaded, submitted, followed and written, concurrently.

A live table on a terminal (one row per file: upload bar, then the task's status); one
line per change otherwise. Rows name the local file, its task id and status: never text.
"""

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from medvoice_client import _protocol
from medvoice_client.aio import AsyncClient
from medvoice_client.errors import ApiError, MedVoiceError, Unreachable
from medvoice_client.models import ExportFormat, TaskStatus
from producer_api.models import FILE_NAME_PATTERN

CONCURRENT_FILES = 4
MAX_FILE_NAME = 255


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    user_id: str
    wait: bool
    out: Path | None
    fmt: ExportFormat
    extension: str | None
    presigned: bool
    timeout_s: float | None


@dataclass
class Outcome:
    """What became of one file."""

    file: Path
    waited: bool
    task_id: UUID | None = None
    status: str = "not submitted"
    written: Path | None = None
    transcript: bytes | None = None  # kept for stdout when there is no --out
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        """Completed and its transcript delivered (with --wait), or submitted (without)."""
        if self.waited:
            delivered = self.written is not None or self.transcript is not None
            return self.status == TaskStatus.COMPLETED and delivered
        return self.task_id is not None

    def line(self) -> str:
        """Task id, status, output file and input file, tab-separated."""
        task = str(self.task_id) if self.task_id else "-"
        written = str(self.written) if self.written else "-"
        return f"{task}\t{self.status}\t{written}\t{self.file}"


class Board:
    """The per-file status display on stderr."""

    def __init__(self, console: Console, files: list[Path]) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[state]}"),
            console=console,
            disable=not self.live,
        )
        self.rows = [
            self.progress.add_task(f.name, total=f.stat().st_size, state="waiting") for f in files
        ]
        self.names = [f.name for f in files]
        self.shown = ["" for _ in files]

    def sent(self, index: int) -> _protocol.ProgressCallback:
        """The upload progress callback of file ``index``."""
        row: TaskID = self.rows[index]

        def update(done: int, total: int) -> None:
            self.progress.update(row, completed=done, total=total)

        return update

    def state(self, index: int, text: str) -> None:
        """Show file ``index``'s new state."""
        if text == self.shown[index]:
            return
        self.shown[index] = text
        self.progress.update(self.rows[index], state=text)
        if not self.live:
            self.console.print(f"medvoice: {self.names[index]}: {text}", markup=False)


def _file_name(path: Path) -> str | None:
    """The name sent with the task when the API accepts it (else none is sent)."""
    name = path.name
    ok = len(name) <= MAX_FILE_NAME and re.fullmatch(FILE_NAME_PATTERN, name)
    return name if ok else None


def _targets(files: list[Path], options: Options) -> list[Path | None]:
    """Where each transcript goes: ``<out>/<stem>.<format>``, made unique within the run."""
    if options.out is None:
        return [None] * len(files)
    used: set[str] = set()
    targets: list[Path | None] = []
    for index, path in enumerate(files):
        name = f"{path.stem}.{options.fmt.value}"
        if name in used:
            name = f"{path.stem}-{index + 1}.{options.fmt.value}"
        used.add(name)
        targets.append(options.out / name)
    return targets


async def _one(
    mv: AsyncClient,
    index: int,
    path: Path,
    target: Path | None,
    options: Options,
    board: Board,
) -> Outcome:
    outcome = Outcome(path, waited=options.wait)
    try:
        board.state(index, "uploading")
        upload = mv.upload_presigned if options.presigned else mv.upload
        stored = await upload(
            path,
            user_id=options.user_id,
            file_extension=options.extension,
            progress=board.sent(index),
        )
        outcome.task_id = await mv.submit(
            stored.file_id,
            stored.file_extension,
            user_id=options.user_id,
            file_name=_file_name(path),
        )
        outcome.status = TaskStatus.QUEUED
        board.state(index, f"task {outcome.task_id} queued")
        if not options.wait:
            return outcome
        async for task in mv.follow(outcome.task_id, timeout_s=options.timeout_s):
            outcome.status = task.status
            board.state(index, f"task {task.task_id} {task.status}")
            if task.error is not None:
                board.state(index, f"task {task.task_id} failed: {task.error.code}")
                board.console.print(
                    f"medvoice: task {task.task_id} failed: {task.error.code}: "
                    f"{task.error.message}",
                    markup=False,
                )
        if outcome.status != TaskStatus.COMPLETED:
            return outcome
        body = await mv.transcript_bytes(outcome.task_id, options.fmt)
        if target is None:
            outcome.transcript = body
        else:
            await asyncio.to_thread(target.write_bytes, body)
            outcome.written = target
            board.state(index, f"task {outcome.task_id} completed: {target}")
    except Unreachable as exc:
        outcome.unreachable = True
        board.state(index, "API unreachable")
        board.console.print(f"medvoice: {exc}", markup=False)
    except ApiError as exc:
        if outcome.task_id is None:
            outcome.status = "refused"
        board.state(index, f"refused: HTTP {exc.status_code}")
        board.console.print(f"medvoice: {path.name}: the API refused: {exc}", markup=False)
    except MedVoiceError as exc:  # not final in time, or an answer that is not a task
        board.state(index, f"{outcome.status}: {type(exc).__name__}")
        board.console.print(f"medvoice: {path.name}: {exc}", markup=False)
    return outcome


async def transcribe_all(
    url: str, token: str | None, files: list[Path], options: Options, console: Console
) -> list[Outcome]:
    """Each file through the API; outcomes in the files' order."""
    for path in files:  # a file whose format cannot be told is a usage error: check first
        _protocol.extension_of(path.name, options.extension)
    if options.out is not None:
        options.out.mkdir(parents=True, exist_ok=True)
    targets = _targets(files, options)
    board = Board(console, files)
    gate = asyncio.Semaphore(CONCURRENT_FILES)

    async def gated(mv: AsyncClient, index: int) -> Outcome:
        async with gate:
            return await _one(mv, index, files[index], targets[index], options, board)

    async with AsyncClient(url, token) as mv:
        with board.progress:
            return list(await asyncio.gather(*(gated(mv, i) for i in range(len(files)))))
