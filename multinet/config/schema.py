"""Validate JSON data against multinet's schemas without importing jsonschema.

jsonschema costs ~100 ms to import, paid on every pod sandbox; this interprets
the subset of JSON Schema our schema files use. tests/unit/test_schema.py proves
it agrees with jsonschema on those files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from multinet.cni.errors import InvalidConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _is(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[type_name])


def _same(a: Any, b: Any) -> bool:
    # JSON Schema equality: true is not 1 and false is not 0 (Python says they are).
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    expected = schema.get("type")
    if expected is None:
        return None
    names = [expected] if isinstance(expected, str) else list(expected)
    if any(_is(value, t) for t in names):
        return None
    return f"{path}: expected {' or '.join(names)}, got {_show(value)}"


def _enum(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if "enum" not in schema or any(_same(value, v) for v in schema["enum"]):
        return None
    allowed = ", ".join(_show(v) for v in schema["enum"])
    return f"{path}: {_show(value)} is not one of {allowed}"


def _string(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if not isinstance(value, str):
        return None
    if len(value) < schema.get("minLength", 0):
        return f"{path}: must not be empty" if value == "" else f"{path}: too short"
    pattern = schema.get("pattern")
    if pattern and not re.search(pattern, value):
        return f"{path}: {_show(value)} does not match {pattern}"
    return None


# A number's bounds: the keyword, the value's breach of it, what the message says.
_BOUNDS: tuple[tuple[str, Callable[[Any, Any], bool], str], ...] = (
    ("minimum", lambda v, b: v < b, "is less than"),
    ("exclusiveMinimum", lambda v, b: v <= b, "must be greater than"),
    ("maximum", lambda v, b: v > b, "is greater than"),
)


def _number(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if not _is(value, "number"):
        return None
    for keyword, breaks, says in _BOUNDS:
        if keyword in schema and breaks(value, schema[keyword]):
            return f"{path}: {value} {says} {schema[keyword]}"
    return None


def _items(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    items = schema.get("items")
    if not isinstance(value, list) or items is None:
        return None
    return next(
        (found for i, item in enumerate(value) if (found := problem(item, items, f"{path}[{i}]"))),
        None,
    )


def _member(key: str, item: Any, schema: Mapping[str, Any], path: str) -> str | None:
    sub = f"{path}.{key}" if path else key
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    if key in props:
        return problem(item, props[key], sub)
    if extra is False:
        return f"{sub}: unknown key"
    if isinstance(extra, Mapping):
        return problem(item, extra, sub)
    return None


def _object(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    if not isinstance(value, dict):
        return None
    for key in schema.get("required", ()):
        if key not in value:
            return f"{path}: required key {key!r} is missing"
    return next(
        (found for key, item in value.items() if (found := _member(key, item, schema, path))),
        None,
    )


# The keywords' checks in the order their messages take precedence.
_CHECKS = (_type, _enum, _string, _number, _items, _object)


def problem(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    """The first way `value` breaks `schema`, as 'path: what is wrong', or None."""
    return next((found for check in _CHECKS if (found := check(value, schema, path))), None)


def validate(value: Any, schema: Mapping[str, Any], what: str) -> None:
    found = problem(value, schema, "")
    if found:
        raise InvalidConfig(f"invalid {what}: {found.lstrip(': ')}")
