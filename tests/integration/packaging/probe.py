"""Run by the interpreter of an installed venv: what its copy of the packages imports.

Standard library only, so it runs in a venv that has nothing but the project's runtime
dependencies. Prints one JSON object on stdout:

- ``modules``: every module of the packages named on the command line (``pkgutil`` walk);
- ``failed``: module -> the exception its import raised (each module imported on its own, so
  one broken module does not hide the others);
- ``outside``: modules that were loaded from somewhere other than this venv (a source tree on
  ``sys.path`` would make the check prove nothing);
- ``imports``: top-level name of every third-party ``import`` in the packages' source (inside
  functions too, but not under ``if TYPE_CHECKING:``) -> the modules importing it;
- ``distributions``: top-level name -> the distributions that provide it here;
- ``requires``: the distributions the installed project requires, extras left out.
"""

import ast
import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
import re
import sys
import traceback
from pathlib import Path

DIST_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_type_checking(test: ast.expr) -> bool:
    """Whether an ``if`` test is ``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
    return name == "TYPE_CHECKING"


def imported_names(source: str) -> set[str]:
    """Top-level names of the absolute imports run at some point (not type-only ones)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def print_error(name: str) -> None:
    """A package that ``pkgutil`` could not import to walk (the import check names it too)."""
    sys.stderr.write(f"cannot walk {name}\n")


def main(packages: list[str]) -> None:
    """Probe ``packages`` and print the findings as JSON."""
    prefix = Path(sys.prefix).resolve()
    failed: dict[str, str] = {}
    outside: dict[str, str] = {}
    imports: dict[str, list[str]] = {}
    sources: dict[str, Path] = {}
    for name in packages:
        package = importlib.import_module(name)
        sources[name] = Path(package.__file__ or "")
        for info in pkgutil.walk_packages(package.__path__, f"{name}.", onerror=print_error):
            spec = importlib.util.find_spec(info.name)  # finds the file, runs nothing of it
            sources[info.name] = Path(spec.origin if spec and spec.origin else "")
    for module, source in sources.items():
        path = source.resolve()
        if not path.is_relative_to(prefix):
            outside[module] = str(path)
        for top in imported_names(path.read_text(encoding="utf-8")):
            if top not in sys.stdlib_module_names and top not in packages:
                imports.setdefault(top, []).append(module)
        try:
            importlib.import_module(module)
        except BaseException as exc:  # noqa: BLE001 - every failure is a finding
            failed[module] = "".join(traceback.format_exception_only(exc)).strip()
    provided = importlib.metadata.packages_distributions()
    requires = [
        normalise(match.group(1))
        for req in importlib.metadata.requires("medvoice-pipeline") or []
        if "extra ==" not in req and (match := DIST_NAME.match(req))
    ]
    result = {
        "modules": list(sources),
        "failed": failed,
        "outside": outside,
        "imports": imports,
        "distributions": {top: provided.get(top, []) for top in imports},
        "requires": requires,
    }
    sys.stdout.write(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
