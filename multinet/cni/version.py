"""CNI spec versions multinet speaks, their ordering and the operation gates."""

from __future__ import annotations

from collections.abc import Iterable

from multinet.cni.errors import IncompatibleVersion, InvalidConfig

# 0.1.0 and 0.2.0 (results with ip4/ip6 objects): for the configs Multus accepts, a
# netconf without cniVersion (read as 0.1.0, as libcni does) or an old NAD.
LEGACY: tuple[str, ...] = ("0.1.0", "0.2.0")
SUPPORTED: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
ACCEPTED: tuple[str, ...] = (*LEGACY, *SUPPORTED)  # what VERSION answers
LATEST = SUPPORTED[-1]

# The first version that defines each operation.
MIN_VERSION = {
    "ADD": "0.1.0",
    "DEL": "0.1.0",
    "VERSION": "0.1.0",
    "CHECK": "0.4.0",
    "GC": "1.1.0",
    "STATUS": "1.1.0",
}


def parse(version: str) -> tuple[int, int, int]:
    """'1.0.0' -> (1, 0, 0); anything else is an invalid config."""
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise InvalidConfig(f"invalid cniVersion {version!r}: expected MAJOR.MINOR.PATCH")
    return int(parts[0]), int(parts[1]), int(parts[2])


def at_least(version: str, minimum: str) -> bool:
    return parse(version) >= parse(minimum)


def require_supported(version: str) -> str:
    parse(version)
    if version not in ACCEPTED:
        raise IncompatibleVersion(
            f"incompatible CNI version {version!r}",
            f"multinet supports {', '.join(ACCEPTED)}",
        )
    return version


def answer_version(requested: str) -> str:
    """The version a reply of multinet's own (an error, VERSION) is written in: the
    request's when multinet speaks it, else the highest it does, never one it cannot."""
    return requested if requested in ACCEPTED else LATEST


def require_for(command: str, version: str) -> None:
    """CHECK needs >= 0.4.0; GC and STATUS need >= 1.1.0."""
    minimum = MIN_VERSION.get(command, "0.1.0")
    if not at_least(version, minimum):
        raise IncompatibleVersion(
            f"{command} is not defined for cniVersion {version}",
            f"{command} needs cniVersion >= {minimum}",
        )


def negotiate(candidates: Iterable[str], supported: Iterable[str] = ACCEPTED) -> str | None:
    """Pick the highest of a conflist's `cniVersions` that we also support (libcni's rule)."""
    ok = set(supported)
    usable = []
    for v in candidates:
        try:
            parse(v)
        except InvalidConfig:
            continue
        if v in ok:
            usable.append(v)
    return max(usable, key=parse) if usable else None
