"""Write the JSON Schema of every event: ``python -m schemas.export DIR``.

``DIR/<Model>.schema.json`` is the current contract (committed; a test fails when it is
stale). ``DIR/released/v<schema_version>/`` is the contract as released with that
``schema_version``: written once, when missing, and from then on the baseline that
``schemas.compat`` holds every later change to (``tests/unit/schemas/test_contract.py``).
"""

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.events import SCHEMA_VERSION, AudioSubmitted, TaskStatusChanged, TranscriptReady
from schemas.transcript import TranscriptDocument

MODELS: tuple[type[BaseModel], ...] = (
    AudioSubmitted,
    TranscriptReady,
    TaskStatusChanged,
    TranscriptDocument,
)


def schema_text(model: type[BaseModel]) -> str:
    """The JSON Schema of ``model`` as written to disk (validation mode: what readers accept)."""
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def released_dir(directory: Path, version: int = SCHEMA_VERSION) -> Path:
    """Where the schemas released with ``version`` are kept."""
    return directory / "released" / f"v{version}"


def export(directory: Path) -> list[Path]:
    """Write ``<Model>.schema.json`` for every contract model into ``directory``.

    Also writes the release baseline of the current ``schema_version`` when it is missing.

    Args:
        directory: where to write; created if missing.

    Returns:
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    released = released_dir(directory)
    new_release = not released.is_dir()
    if new_release:
        released.mkdir(parents=True)
    written = []
    for model in MODELS:
        targets = [directory] + ([released] if new_release else [])
        for target in targets:
            path = target / f"{model.__name__}.schema.json"
            path.write_text(schema_text(model))
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
