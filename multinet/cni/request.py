"""A CNI invocation (environment + stdin) parsed and validated into a typed request."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from multinet.cni.errors import DecodeFailure, InvalidConfig, InvalidEnvironment
from multinet.cni.ifname import validate_ifname
from multinet.cni.strictjson import JSONError, encodable, loads
from multinet.log import log
from multinet.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")
CONTAINER_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")

# Environment each command cannot do without (CNI_NETNS may be empty for DEL).
REQUIRED_ENV = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": (),
    "STATUS": (),
    "VERSION": (),
}


# The variables that must be UTF-8 text (from_env checks CNI_COMMAND by its value).
ENV_TEXT = ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")

# The CNI_ARGS keys multinet itself reads (those kubelet runtimes send).
KNOWN_ARGS = frozenset(
    {
        "IgnoreUnknown",
        "K8S_POD_NAMESPACE",
        "K8S_POD_NAME",
        "K8S_POD_INFRA_CONTAINER_ID",
        "K8S_POD_UID",
    }
)


@record(frozen=True)
class Request:
    command: str
    config: dict[str, Any]
    cni_version: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args_raw: str = ""
    args: tuple[tuple[str, str], ...] = ()
    path: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def arg(self, key: str) -> str | None:
        """The last value of CNI_ARGS key, or None."""
        value = None
        for k, v in self.args:
            if k == key:
                value = v
        return value


def parse_args(raw: str, *, lenient: bool = False) -> tuple[tuple[str, str], ...]:
    """CNI_ARGS 'K=V;K2=V2' -> pairs; an element without '=' is invalid, an empty one
    ('A=1;;B=2', a trailing ';') too, as libcni says (`ARGS: invalid pair ""`).

    `lenient` (DEL) skips invalid elements with a warning instead: a pod's deletion must
    not be refused for what its ADD was (the runtime sends the same CNI_ARGS)."""
    if not raw:
        return ()
    pairs = []
    for i, item in enumerate(raw.split(";"), 1):
        key, sep, value = item.partition("=")
        if item and sep and key:
            pairs.append((key, value))
            continue
        problem = (
            f"CNI_ARGS: element {i} is empty (stray ';'): expected KEY=VALUE;KEY=VALUE"
            if not item
            else f"CNI_ARGS: invalid element {i} {item!r}: expected KEY=VALUE"
        )
        if not lenient:
            raise InvalidEnvironment(problem)
        log.warning("%s: ignored on DEL", problem)
    return tuple(pairs)


def parse_config(stdin: bytes, *, lenient: bool = False) -> dict[str, Any]:
    """The stdin netconf, strict JSON. `lenient` (DEL) also reads NaN and Infinity, which
    the lenient netconf then drops with the setting that holds them."""
    try:
        config = loads(stdin or b"{}", constants=lenient)
    except JSONError as e:
        raise DecodeFailure("network configuration on stdin is not valid JSON", str(e)) from None
    if not isinstance(config, dict):
        raise DecodeFailure(
            "network configuration on stdin must be a JSON object",
            f"got {type(config).__name__}",
        )
    return config


def from_env(env: Mapping[str, str], stdin: bytes) -> Request:
    command = env.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise InvalidEnvironment(
            f"CNI_COMMAND {command!r} is not one of {', '.join(COMMANDS)}"
            if command
            else "CNI_COMMAND is not set"
        )
    deleting = command == "DEL"
    config = parse_config(stdin, lenient=deleting)
    version = config.get("cniVersion", "0.1.0")
    if not isinstance(version, str):
        if not deleting:
            raise InvalidConfig(f"cniVersion must be a string, got {json.dumps(version)}")
        version = "0.1.0"  # DEL has no result to write in it; the netconf is read leniently
    for key in REQUIRED_ENV[command]:
        if not env.get(key):
            raise InvalidEnvironment(f"{key} is required for {command} but is not set")
    env = check_env_text(env, lenient=deleting)
    container_id = env.get("CNI_CONTAINERID", "")
    if container_id and not CONTAINER_ID.fullmatch(container_id):
        raise InvalidEnvironment(
            f"CNI_CONTAINERID {container_id!r} is invalid: expected [a-zA-Z0-9][a-zA-Z0-9_.-]*"
        )
    ifname = env.get("CNI_IFNAME", "")
    if ifname or command in ("ADD", "CHECK", "DEL"):
        problem = validate_ifname(ifname)
        if problem:
            raise InvalidEnvironment(f"CNI_IFNAME {ifname!r} is invalid: {problem}")
    args_raw = env.get("CNI_ARGS", "")
    args = parse_args(args_raw, lenient=deleting)
    if deleting:  # the delegates get the same pairs, without the invalid elements
        args_raw = ";".join(f"{k}={v}" for k, v in args)
    path = tuple(p for p in env.get("CNI_PATH", "").split(":") if p)
    return Request(
        command=command,
        config=config,
        cni_version=version,
        container_id=container_id,
        netns=env.get("CNI_NETNS", ""),
        ifname=ifname,
        args_raw=args_raw,
        args=args,
        path=path,
        env=dict(env),
    )


def check_env_text(env: Mapping[str, str], *, lenient: bool = False) -> dict[str, str]:
    """Every CNI_* variable must be UTF-8 text without NUL: delegates get them in their
    environment, and a byte that is not UTF-8 arrives here as a lone surrogate (Python's
    surrogateescape). `lenient` (DEL) drops, with a warning, a CNI_NETNS, CNI_ARGS or
    CNI_PATH that is not (the journal knows the netns); the container ID and the
    interface still have to name a container."""
    out = dict(env)
    for key in ENV_TEXT:
        value = env.get(key, "")
        problem = None
        if not encodable(value):
            at = next(i for i, c in enumerate(value) if not encodable(c))
            problem = (
                f"{key} {value!r} is invalid: character {at + 1} is not UTF-8 text "
                "(a byte that is not UTF-8, or a lone surrogate)"
            )
        elif "\x00" in value:
            problem = f"{key} {value!r} is invalid: it holds a NUL character"
        if problem is None:
            continue
        if not lenient or key in ("CNI_CONTAINERID", "CNI_IFNAME"):
            raise InvalidEnvironment(problem)
        log.warning("%s: ignored on DEL", problem)
        out[key] = ""
    return out


def check_args(req: Request) -> None:
    """libcni's LoadArgs rule, as Multus applies it: a key multinet does not know is an
    error unless IgnoreUnknown is true. Not for DEL, which must not fail on it."""
    if req.command not in ("ADD", "CHECK"):
        return
    unknown = [k for k, _ in req.args if k not in KNOWN_ARGS]
    if unknown and (req.arg("IgnoreUnknown") or "").lower() not in ("1", "true"):
        raise InvalidEnvironment(
            f"CNI_ARGS: unknown key(s) {', '.join(unknown)}",
            "set IgnoreUnknown=1 to pass keys multinet does not read on to the delegates",
        )
