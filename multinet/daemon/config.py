"""multinetd's configuration file: daemon keys plus any key of the thin netconf.

The thin keys (kubeconfig, cniDir, binDir, delegates, ...) take precedence over
the same keys in every forwarded request, as in Multus's thick mode, and are
copied into the generated 00-multinet.conflist so that the shim's in-process
fallback behaves like the daemon. `cniVersion`, `name` and `type` are never
forced onto requests: the runtime's cniVersion decides the result's version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multinet import schemas
from multinet.cni.errors import InvalidConfig
from multinet.config import schema
from multinet.config.jsonfile import read_object
from multinet.config.netconf import DEFAULT_CNI_DIR, DEFAULT_SOCKET

DEFAULT_CONFIG_FILE = "/etc/multinet/daemon.json"
DEFAULT_CNI_CONFIG_DIR = "/etc/cni/net.d"
DEFAULT_NAME = "multinet-cni-network"

# A path: no NUL and no lone surrogate (a JSON "\udcff" escape), which no file name holds.
PATH_PATTERN = "^[^\\u0000\\ud800-\\udfff]*$"

# Keys the daemon itself reads: never forwarded into requests.
DAEMON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "daemonSocketPath": {"type": "string", "minLength": 1, "pattern": PATH_PATTERN},
        "nodeName": {"type": "string"},
        "metricsAddress": {"type": "string"},
        "cniConfigDir": {"type": "string", "minLength": 1, "pattern": PATH_PATTERN},
        "primaryConfig": {"type": "string", "pattern": PATH_PATTERN},
        "multusMasterCNI": {"type": "string", "pattern": PATH_PATTERN},
        "generateConfig": {"type": "boolean"},
        "cleanupConfigOnExit": {"type": "boolean"},
        "confPollInterval": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "cniVersion": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$"},
        "name": {"type": "string", "minLength": 1},
        "type": {"type": "string"},
    },
}
NOT_FORWARDED = frozenset(DAEMON_SCHEMA["properties"])


@dataclass(frozen=True)
class DaemonConfig:
    socket_path: str = DEFAULT_SOCKET
    node_name: str = ""
    metrics_address: tuple[str, int] | None = None
    cni_config_dir: str = DEFAULT_CNI_CONFIG_DIR
    primary_config: str = ""  # file name in cni_config_dir or a path; '' = first by name
    generate_config: bool = True
    cleanup_config_on_exit: bool = False
    conf_poll_interval: float = 1.0
    name: str = DEFAULT_NAME  # of the generated conflist
    cni_version: str = ""  # of the generated conflist; '' = the primary's
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cni_dir(self) -> str:
        return str(self.overrides.get("cniDir", DEFAULT_CNI_DIR))

    @property
    def readiness_indicator_file(self) -> str:
        return str(self.overrides.get("readinessindicatorfile", ""))

    @property
    def log_level(self) -> str:
        return str(self.overrides.get("logLevel") or "info")

    @property
    def log_file(self) -> str:
        return str(self.overrides.get("logFile", ""))

    @property
    def log_to_stderr(self) -> bool:
        return bool(self.overrides.get("logToStderr", True))


def parse_address(value: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); an empty host listens everywhere."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidConfig(
            f"invalid daemon configuration: metricsAddress: {value!r} is not HOST:PORT"
        )
    return host.strip("[]"), int(port)


def load(raw: Mapping[str, Any], environ: Mapping[str, str]) -> DaemonConfig:
    if not isinstance(raw, Mapping):
        raise InvalidConfig("invalid daemon configuration: expected a JSON object")
    schema.validate(raw, DAEMON_SCHEMA, "daemon configuration")
    overrides = {k: v for k, v in raw.items() if k not in NOT_FORWARDED}
    thin = dict(schemas.load("netconf.json"), required=[])
    schema.validate(overrides, thin, "daemon configuration")
    metrics = raw.get("metricsAddress", "")
    return DaemonConfig(
        socket_path=raw.get("daemonSocketPath", DEFAULT_SOCKET),
        node_name=raw.get("nodeName") or environ.get("NODE_NAME", ""),
        metrics_address=parse_address(metrics) if metrics else None,
        cni_config_dir=raw.get("cniConfigDir", DEFAULT_CNI_CONFIG_DIR),
        primary_config=raw.get("primaryConfig") or raw.get("multusMasterCNI", ""),
        generate_config=raw.get("generateConfig", True),
        cleanup_config_on_exit=raw.get("cleanupConfigOnExit", False),
        conf_poll_interval=float(raw.get("confPollInterval", 1.0)),
        name=raw.get("name", DEFAULT_NAME),
        cni_version=raw.get("cniVersion", ""),
        overrides=overrides,
    )


def load_file(path: str, environ: Mapping[str, str]) -> DaemonConfig:
    return load(read_object(path, "daemon configuration"), environ)
