"""Read a JSON object from a file, with errors that name the file and what it is for."""

from __future__ import annotations

from multinet.cni.errors import InvalidConfig
from multinet.cni.strictjson import JSONError, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def read_object(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            text = f.read()
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise InvalidConfig(f"cannot read {what} {path!r}", str(e)) from None
    try:
        data = loads(text)
    except JSONError as e:
        raise InvalidConfig(f"{what} {path} is not valid JSON", str(e)) from None
    if not isinstance(data, dict):
        raise InvalidConfig(f"{what} {path} must hold a JSON object")
    return data
