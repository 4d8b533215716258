"""Backward compatibility of an event's JSON Schema with its released version.

A reader written against the released schema must be able to read what the current code
writes while ``schema_version`` is unchanged. So, comparing released with current:

- no property is removed, and none changes its type (type, format, ``$ref`` target shape,
  enum values removed);
- a property new in the current schema is optional (readers of the released version ignore it,
  writers of the released version never send it);
- a property optional in the released schema stays optional.

Descriptions, titles and defaults may change. Nested objects are compared by the same rules.
The released schemas live in ``schemas/json/released/v<schema_version>/``
(``python -m schemas.export`` writes one when a version is released).
"""

from typing import Any

Schema = dict[str, Any]
IGNORED = frozenset({"description", "title", "default", "examples"})


def _resolve(node: Any, root: Schema) -> Any:
    """``node`` with every local ``$ref`` replaced by its target (recursively)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            return _resolve(target, root)
        return {k: _resolve(v, root) for k, v in node.items() if k not in IGNORED}
    if isinstance(node, list):
        return [_resolve(v, root) for v in node]
    return node


def _variants(schema: Any) -> list[Any]:
    if isinstance(schema, dict) and "anyOf" in schema:
        return list(schema["anyOf"])
    return [schema]


def _compare(old: Any, new: Any, path: str, problems: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("type") == "object" or "properties" in old:
            _compare_object(old, new, path, problems)
            return
        if "enum" in old or "const" in old:
            before = set(map(repr, old.get("enum", [old.get("const")])))
            after = set(map(repr, new.get("enum", [new.get("const")])))
            if not before <= after:
                problems.append(f"{path}: values removed ({', '.join(sorted(before - after))})")
            rest_old = {k: v for k, v in old.items() if k not in ("enum", "const")}
            rest_new = {k: v for k, v in new.items() if k not in ("enum", "const")}
            if rest_old != rest_new:
                problems.append(f"{path}: type changed")
            return
        if "anyOf" in old or "anyOf" in new:
            # Each form the value could take must still be readable as one of the new forms.
            for form in _variants(old):
                trials: list[list[str]] = []
                for candidate in _variants(new):
                    found: list[str] = []
                    _compare(form, candidate, path, found)
                    trials.append(found)
                if all(trials):
                    fewest: list[str] = min(trials, key=len)
                    problems.extend(fewest)
            return
    if old != new:
        problems.append(f"{path}: type changed")


def _compare_object(old: Schema, new: Schema, path: str, problems: list[str]) -> None:
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    old_required = set(old.get("required", []))
    new_required = set(new.get("required", []))
    for name, schema in old_props.items():
        where = f"{path}.{name}" if path else name
        if name not in new_props:
            problems.append(f"{where}: removed")
            continue
        if name not in old_required and name in new_required:
            problems.append(f"{where}: was optional, is now required")
        _compare(schema, new_props[name], where, problems)
    for name in new_props.keys() - old_props.keys():
        if name in new_required:
            where = f"{path}.{name}" if path else name
            problems.append(f"{where}: new and required (a new field must be optional)")


def breaking_changes(released: Schema, current: Schema) -> list[str]:
    """What in ``current`` a reader of ``released`` could not read; empty when compatible."""
    problems: list[str] = []
    _compare(_resolve(released, released), _resolve(current, current), "", problems)
    return problems
