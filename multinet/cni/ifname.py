"""Interface-name rules shared by CNI_IFNAME and a selection's `interface` (libcni's checks)."""

from __future__ import annotations

# IFNAMSIZ is 16 bytes including the terminating NUL; the kernel counts bytes, not characters.
MAX_BYTES = 15


def validate_ifname(name: str) -> str | None:
    """What is wrong with `name` as a Linux interface name, or None when it is fine.

    The answer reads after "is invalid: ", e.g. `contains "/"`.
    """
    if not name:
        return "empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "not UTF-8 text (a byte that is not UTF-8, or a lone surrogate)"
    if "\x00" in name:
        return "contains a NUL character"
    if size > MAX_BYTES:
        return f"longer than {MAX_BYTES} bytes"
    if name in (".", ".."):
        return '"." and ".." are not allowed'
    for char in ("/", ":"):
        if char in name:
            return f'contains "{char}"'
    if any(c.isspace() for c in name):
        return "contains whitespace"
    return None
