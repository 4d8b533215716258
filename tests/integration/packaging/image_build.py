"""The Dockerfile's build stage, run without a container engine.

Docker cannot run on the CI machines, so this reads the Dockerfile and runs its build stage
here, step by step: ``ENV``, ``WORKDIR``, ``COPY`` (of the build context that .dockerignore
lets through) and every ``RUN`` script verbatim under ``/bin/sh -c``, with this machine's
Python standing in for the base image's. The container paths the stage uses (its WORKDIR and
the venv it creates) are mapped into a work directory; any other absolute path in a ``RUN``
fails the build here, so a change to the Dockerfile this module cannot mirror is noticed, not
skipped. The venv the stage leaves is what the image copies and runs; ``runtime_env`` and
``cmd`` are the final stage's environment and command.

One deliberate difference: ``PIP_NO_CACHE_DIR`` is not applied, so pip's cache (filled by
``make install``) keeps this fast. It changes what pip downloads, not what it installs.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

NOT_APPLIED = frozenset({"PIP_NO_CACHE_DIR"})
RUN_TIMEOUT_S = 600.0  # one RUN step; a pip install without a warm cache downloads ~400 MB
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
ABSOLUTE_PATH = re.compile(r"(?<![\w./$-])/[\w.-][\w./-]*")


@dataclass
class Instruction:
    """One Dockerfile instruction: its keyword and its arguments (a RUN's heredoc included)."""

    keyword: str
    args: str


@dataclass
class Stage:
    """One ``FROM`` stage."""

    name: str | None
    steps: list[Instruction] = field(default_factory=list)


@dataclass
class BuiltImage:
    """What the build stage produced, and how the final stage runs it."""

    venv: Path
    runtime_env: dict[str, str]
    cmd: list[str]
    log: Path

    @property
    def python(self) -> Path:
        """The interpreter the image runs (``python`` on the final stage's PATH)."""
        return self.venv / "bin" / "python"


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: continuation lines joined, comments and blanks dropped."""
    lines = text.splitlines()
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + lines[i]  # Docker drops the backslash and the newline
            i += 1
        keyword, _, args = line.strip().partition(" ")
        heredoc = HEREDOC.search(args) if keyword.upper() == "RUN" else None
        if heredoc:
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != heredoc.group(2):
                body.append(lines[i])
                i += 1
            i += 1  # the terminator
            args = "\n".join([args, *body, heredoc.group(2)]) + "\n"
        out.append(Instruction(keyword.upper(), args))
    return out


def stages(text: str) -> list[Stage]:
    """The ``FROM`` stages in order (instructions before the first ``FROM`` are dropped)."""
    found: list[Stage] = []
    for ins in parse(text):
        if ins.keyword == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(name))
        elif found:
            found[-1].steps.append(ins)
    return found


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over slash-separated paths."""
    out = ""
    i = 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


class DockerIgnore:
    """Docker's rule: the last pattern matching a path or one of its parents decides."""

    def __init__(self, text: str) -> None:
        """Parse the lines of a .dockerignore file."""
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                keep = line.startswith("!")
                self.rules.append((keep, _pattern(line.lstrip("!"))))

    def included(self, relative: str) -> bool:
        """Whether the build context holds ``relative`` (a path under the context root)."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = True
        for keep, rule in self.rules:
            if any(rule.fullmatch(c) for c in candidates):
                verdict = keep
        return verdict


class BuildStage:
    """Runs the Dockerfile's first stage with its container paths mapped under ``work``."""

    def __init__(self, context: Path, work: Path) -> None:
        """``context``: the repository root (Docker's build context)."""
        self.context = context
        self.work = work
        self.log = work / "build.log"
        self.ignore = DockerIgnore((context / ".dockerignore").read_text(encoding="utf-8"))
        self.stages = stages((context / "Dockerfile").read_text(encoding="utf-8"))
        self.paths: dict[str, Path] = {}  # container path -> path here
        shim = work / "base-image-bin"  # the base image's `python`: this machine's interpreter
        shim.mkdir(parents=True)
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        (shim / "python").symlink_to(base if base.exists() else Path(sys.executable))
        self.base_env = {  # what a stage starts with: the base image's environment
            "PATH": f"{shim}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", str(work)),
            "LANG": "C.UTF-8",
        }
        for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT"):
            if name in os.environ:  # how this machine reaches the package index
                self.base_env[name] = os.environ[name]
        self.env = dict(self.base_env)
        self.cwd = work

    def map(self, text: str) -> str:
        """``text`` with each mapped container path replaced by its path here."""
        for container, here in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            text = re.sub(rf"(?<![\w./-]){re.escape(container)}(?![\w.-])", str(here), text)
        return text

    def expand(self, value: str, env: dict[str, str]) -> str:
        """``$NAME`` and ``${NAME}`` replaced as Docker does in ENV and WORKDIR."""
        return VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)

    def run(self) -> BuiltImage:
        """Run the build stage; returns the venv and the final stage's env and command."""
        build, final = self.stages[0], self.stages[-1]
        for ins in build.steps:
            self._step(ins)
        runtime_env: dict[str, str] = {}
        cmd: list[str] = []
        for ins in final.steps:
            if ins.keyword == "ENV":
                runtime_env |= self._env_pairs(ins.args, {**self.base_env, **runtime_env})
            elif ins.keyword == "CMD":
                cmd = list(json.loads(ins.args))
            elif ins.keyword == "COPY" and ins.args.startswith(f"--from={build.name} "):
                source, dest = ins.args.split()[1:]
                if source != dest or source not in self.paths:
                    raise RuntimeError(f"COPY {ins.args}: a venv must keep its build path")
        venvs = [p for c, p in self.paths.items() if (p / "pyvenv.cfg").exists()]
        if len(venvs) != 1:
            raise RuntimeError(f"the build stage should leave one venv, found {venvs}")
        return BuiltImage(venvs[0], runtime_env, cmd, self.log)

    def _env_pairs(self, args: str, env: dict[str, str]) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for word in shlex.split(args):
            name, _, value = word.partition("=")
            pairs[name] = self.map(self.expand(value, {**env, **pairs}))
        return pairs

    def _step(self, ins: Instruction) -> None:
        if ins.keyword == "ENV":
            pairs = self._env_pairs(ins.args, self.env)
            self.env |= {k: v for k, v in pairs.items() if k not in NOT_APPLIED}
        elif ins.keyword == "WORKDIR":
            self.cwd = self._container_dir(self.expand(ins.args, self.env))
        elif ins.keyword == "COPY":
            *sources, dest = shlex.split(ins.args)
            for source in sources:
                self._copy(source, self.cwd / dest if not dest.startswith("/") else Path(dest))
        elif ins.keyword == "RUN":
            self._run(ins.args)
        elif ins.keyword != "ARG":
            raise RuntimeError(f"image_build cannot mirror {ins.keyword} {ins.args}")

    def _container_dir(self, container: str) -> Path:
        here = self.paths.setdefault(container, self.work / "root" / container.strip("/"))
        here.mkdir(parents=True, exist_ok=True)
        return here

    def _copy(self, source: str, dest: Path) -> None:
        src = self.context / source
        if not self.ignore.included(source):
            raise RuntimeError(f"COPY {source}: .dockerignore leaves it out of the build context")
        if src.is_file():
            shutil.copy2(src, dest / src.name if source.endswith("/") or dest.is_dir() else dest)
            return
        for path in sorted(src.rglob("*")):
            relative = path.relative_to(self.context).as_posix()
            if path.is_file() and self.ignore.included(relative):
                target = dest / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)

    def _run(self, script: str) -> None:
        for venv in re.findall(r"python -m venv (\S+)", script):
            self.paths.setdefault(venv, self.work / "root" / venv.strip("/"))
        unknown = {p for p in ABSOLUTE_PATH.findall(script) if self._unmapped(p)}
        if unknown:
            raise RuntimeError(f"RUN uses container paths image_build does not map: {unknown}")
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n### RUN {script}\n")
            log.flush()
            done = subprocess.run(
                ["/bin/sh", "-c", self.map(script)],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        if done.returncode != 0:
            tail = "\n".join(self.log.read_text(encoding="utf-8").splitlines()[-40:])
            raise RuntimeError(f"RUN failed ({done.returncode}): {script}\n{tail}")

    def _unmapped(self, path: str) -> bool:
        return not any(path == c or path.startswith(f"{c}/") for c in self.paths)
