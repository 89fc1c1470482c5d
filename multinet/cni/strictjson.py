"""Strict JSON for everything multinet reads from outside, as libcni (Go's encoding/json)
reads it: UTF-8 only (no byte order mark, no UTF-16/UTF-32), no NaN or Infinity, and
nesting bounded (real CNI configs are less than 10 levels deep).

Callers turn `JSONError` into the CNI error of their input (code 6 for stdin, 7 for an
annotation or a NAD's config) with a message that names the input.
"""

from __future__ import annotations

import codecs
import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

# Levels of arrays and objects a configuration may nest (the top level is 1).
MAX_DEPTH = 64


class JSONError(ValueError):
    """Text that is not strict JSON; the message says what is wrong with it."""


def _refuse(name: str) -> NoReturn:
    raise JSONError(f"{name} is not JSON")


def decode_utf8(data: bytes) -> str:
    """`data` as UTF-8 text; JSONError naming the first byte that is not."""
    if data.startswith(codecs.BOM_UTF8):
        raise JSONError("starts with a UTF-8 byte order mark, which JSON does not allow")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JSONError(f"not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start}") from None


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """JSONError when `value` nests lists and objects deeper than `limit` levels.

    Iterative: safe on any depth, and cheap (each container is visited once)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            raise JSONError(f"nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def loads(data: bytes | str, max_depth: int = MAX_DEPTH, *, constants: bool = False) -> Any:
    """json.loads, strictly; JSONError (a ValueError) says what is wrong. `constants` reads
    NaN and Infinity as floats (for a caller that must make sense of anything)."""
    text = decode_utf8(data) if isinstance(data, bytes) else data
    if text.startswith("\ufeff"):
        raise JSONError("starts with a byte order mark (U+FEFF), which JSON does not allow")
    if "\x00" in text:
        raise JSONError("holds a NUL byte (UTF-16 or UTF-32 input? JSON must be UTF-8)")
    try:
        value = json.loads(text, parse_constant=float if constants else _refuse)
    except RecursionError:
        raise JSONError(f"nested deeper than {max_depth} levels") from None
    except JSONError:
        raise
    except ValueError as e:
        raise JSONError(str(e)) from None
    check_depth(value, max_depth)
    return value


def unencodable(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) in `value` that is not valid Unicode text
    (a lone surrogate, as a JSON `\\udcff` escape gives), or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not encodable(item):
                return where or "the value"
        elif isinstance(item, dict):
            for key, child in item.items():
                sub = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and not encodable(key):
                    return f"{sub} (the key)"
                stack.append((child, sub))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list | tuple) else "object"


def encodable(text: str) -> bool:
    """True when `text` encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
