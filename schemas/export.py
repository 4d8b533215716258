"""Write the JSON Schema of every event: ``python -m schemas.export DIR``."""

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.events import AudioSubmitted, TaskStatusChanged, TranscriptReady
from schemas.transcript import TranscriptDocument

MODELS: tuple[type[BaseModel], ...] = (
    AudioSubmitted,
    TranscriptReady,
    TaskStatusChanged,
    TranscriptDocument,
)


def export(directory: Path) -> list[Path]:
    """Write ``<Model>.schema.json`` for every contract model into ``directory``.

    Args:
        directory: where to write; created if missing.

    Returns:
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in MODELS:
        path = directory / f"{model.__name__}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """Command-line entry point."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m schemas.export DIR\n")
        return 2
    for path in export(Path(argv[0])):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
