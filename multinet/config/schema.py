"""Validate JSON data against multinet's schemas without importing jsonschema.

jsonschema costs ~100 ms to import, paid on every pod sandbox; this interprets
the subset of JSON Schema our schema files use. tests/unit/test_schema.py proves
it agrees with jsonschema on those files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from multinet.cni.errors import InvalidConfig

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


def problem(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    """The first way `value` breaks `schema`, as 'path: what is wrong', or None."""
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is(value, t) for t in names):
            return f"{path}: expected {' or '.join(names)}, got {_show(value)}"
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        allowed = ", ".join(_show(v) for v in schema["enum"])
        return f"{path}: {_show(value)} is not one of {allowed}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{path}: must not be empty" if value == "" else f"{path}: too short"
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            return f"{path}: {_show(value)} does not match {pattern}"
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path}: {value} is less than {schema['minimum']}"
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return f"{path}: {value} must be greater than {schema['exclusiveMinimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path}: {value} is greater than {schema['maximum']}"
    if isinstance(value, list):
        items = schema.get("items")
        if items is not None:
            for i, item in enumerate(value):
                found = problem(item, items, f"{path}[{i}]")
                if found:
                    return found
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                return f"{path}: required key {key!r} is missing"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in props:
                found = problem(item, props[key], sub)
            elif extra is False:
                found = f"{sub}: unknown key"
            elif isinstance(extra, Mapping):
                found = problem(item, extra, sub)
            else:
                found = None
            if found:
                return found
    return None


def validate(value: Any, schema: Mapping[str, Any], what: str) -> None:
    found = problem(value, schema, "")
    if found:
        raise InvalidConfig(f"invalid {what}: {found.lstrip(': ')}")
