"""multinetd's configuration file: daemon keys plus any key of the thin netconf.

The thin keys (kubeconfig, cniDir, binDir, delegates, ...) take precedence over
the same keys in every forwarded request, as in Multus's thick mode, and are
copied into the generated 00-multinet.conflist so that the shim's in-process
fallback behaves like the daemon. `cniVersion`, `name` and `type` are never
forced onto requests: the runtime's cniVersion decides the result's version.

Multus's daemon-config.json keys (`MULTUS_SCHEMA`) are read here too, so that a Multus
node's configuration works as it is: each is honoured with Multus's meaning (`socketDir`,
`metricsPort`, `multusConfigFile`, `multusAutoconfigDir`, `overrideNetworkName`,
`connectionLimit`, read as multinet's `maxConcurrentRequests`, and `chrootDir`, read as
multinet's own `hostRoot`) or refused with the multinet equivalent
(`_refusal`); none but `chrootDir` (as `hostRoot`) is forwarded into requests. Keys
neither multinet nor Multus knows are forwarded (a delegate may read them) with a
warning (`DaemonConfig.notes`).
"""

from __future__ import annotations

import os
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
DEFAULT_DHCP_SOCKET = "/run/cni/dhcp.sock"  # the reference dhcp daemon's own default
DHCP_BIN_DIRS = ("/opt/cni/bin", "/usr/lib/cni")

# A path: no NUL and no lone surrogate (a JSON "\udcff" escape), which no file name holds.
PATH_PATTERN = "^[^\\u0000\\ud800-\\udfff]*$"

# Bounded work (daemon.admission), per lane. Executing at once: two per CPU, since a
# request mostly waits on its delegates' processes (exec, netlink, IPAM locks) while each
# costs memory in the daemon's cgroup. Waiting: more than a node's pods (kubelet maxPods,
# 110 by default, 250 at most) restarting at once. A waiting request gives up (code 11)
# well before the kubelet's 2 minute runtime request timeout, leaving 30 s to run.
MAX_CONCURRENT = 1024
MAX_QUEUED = 10000
MAX_QUEUE_TIMEOUT = 119  # < the kubelet's runtime request timeout (120 s)
DEFAULT_QUEUED = 512
DEFAULT_QUEUE_TIMEOUT = 90.0
# The default's ceiling: each executing request's delegates are in the daemon's cgroup
# (~1.2 MiB each measured), and a DaemonSet's memory limit does not grow with the node's
# CPUs (a container without a cpuset sees all of them).
DEFAULT_CONCURRENCY_CAP = 8
# The other lane (DEL, CHECK, STATUS, GC) is wider: a DEL frees memory, and tearing down
# interfaces waits on the kernel (RCU grace periods), not on a CPU, so DELs overlap.
OTHER_CONCURRENCY_FACTOR = 4
OTHER_CONCURRENCY_CAP = 32
# Memory-aware admission (daemon.admission.MemoryBudget): what one request adds to the
# daemon's cgroup at its peak, MiB. Measured in a memory cgroup of their own, one at a
# time: a bridge or macvlan delegate with its host-local IPAM peaks at 2.0 to 2.75 MiB
# of it (anonymous + kernel: stacks, page tables), ADD or DEL, a cold first exec the
# most; the daemon's own share of a request (a thread, buffers) is a few tens of KiB.
DEFAULT_REQUEST_MEMORY_COST_MIB = 2.5
MAX_MEMORY_MIB = 2**20  # 1 TiB
# GC from the runtime's own truth (daemon.gc): a pass every 5 minutes; a journal younger
# than 10 minutes is left alone (its sandbox may still be being created: containerd lists
# a sandbox only once its RunPodSandbox, CNI ADD included, is done).
DEFAULT_GC_INTERVAL = 300.0
DEFAULT_GC_GRACE = 600.0
# A pass starts once the admission lanes have been idle this long (not during a burst).
DEFAULT_GC_QUIET = 5.0


def default_concurrency() -> int:
    """Two requests per CPU the daemon may run on (its affinity: a cpuset counts), at
    least 2, at most DEFAULT_CONCURRENCY_CAP."""
    cpus = len(os.sched_getaffinity(0))
    return min(DEFAULT_CONCURRENCY_CAP, max(2, 2 * cpus))


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
        "dhcpDaemon": {"type": "boolean"},
        "dhcpDaemonSocketPath": {"type": "string", "minLength": 1, "pattern": PATH_PATTERN},
        "dhcpDaemonBinary": {"type": "string", "pattern": PATH_PATTERN},
        "dynamicNetworks": {"type": "boolean"},
        "dynamicNetworksInterval": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "maxConcurrentRequests": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENT},
        "maxQueuedRequests": {"type": "integer", "minimum": 0, "maximum": MAX_QUEUED},
        "queueTimeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_QUEUE_TIMEOUT},
        "fallbackKubeconfig": {"type": "string", "pattern": PATH_PATTERN},
        "maxConcurrentOtherRequests": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_CONCURRENT,
        },
        # "auto": the daemon's cgroup limit; 0: no memory-aware admission; else MiB.
        "memoryBudget": {
            "type": ["number", "string"],
            "pattern": "^auto$",
            "minimum": 0,
            "maximum": MAX_MEMORY_MIB,
        },
        "requestMemoryCost": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_MEMORY_MIB,
        },
        "gc": {"type": "boolean"},
        "gcRuntimeSocket": {"type": "string", "pattern": PATH_PATTERN},
        "gcInterval": {"type": "number", "minimum": 1, "maximum": 86400},
        "gcGracePeriod": {"type": "number", "minimum": 0, "maximum": 86400},
        "gcDryRun": {"type": "boolean"},
        "gcQuietPeriod": {"type": "number", "minimum": 0, "maximum": 3600},
        "name": {"type": "string", "minLength": 1},
        "type": {"type": "string"},
    },
}

# Multus's daemon-config.json keys (multus-cni pkg/server/types.go ControllerNetConf and
# pkg/server/config/generator.go MultusConf) beside the thin keys both share.
MULTUS_SOCKET_NAME = "multus.sock"
MULTUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "socketDir": {"type": "string", "minLength": 1, "pattern": PATH_PATTERN},
        "metricsPort": {"type": "integer", "minimum": 1, "maximum": 65535},
        "chrootDir": {"type": "string", "pattern": PATH_PATTERN},
        "multusConfigFile": {"type": "string", "minLength": 1, "pattern": PATH_PATTERN},
        "multusAutoconfigDir": {"type": "string", "minLength": 1, "pattern": PATH_PATTERN},
        "overrideNetworkName": {"type": "boolean"},
        "forceCNIVersion": {"type": "boolean"},
        "perNodeCertificate": {"type": "object"},
        "logOptions": {"type": "object"},
        "daemonSocketDir": {"type": "string"},
        "auxiliaryCNIChainName": {"type": "string"},
        "connectionLimit": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENT},
    },
}
DOCS = "docs/thick-mode.md#multus-daemon-configjson-keys"


def _refusal(key: str, value: Any) -> str | None:
    """Why multinetd refuses this value of a Multus key (None: accepted)."""
    if key == "forceCNIVersion" and value:
        return (
            "forceCNIVersion: multinet never rewrites the primary network's config; it "
            "converts each result to the version the runtime asked for. Remove the key"
        )
    if key == "perNodeCertificate" and value.get("enabled"):
        return (
            "perNodeCertificate: not supported; give multinetd a kubeconfig (the "
            "`kubeconfig` key) or run it with a service account"
        )
    if key == "logOptions" and value:
        return (
            "logOptions: multinetd does not rotate logFile; log to stderr (logToStderr) or "
            "rotate logFile with logrotate (copytruncate)"
        )
    if key == "daemonSocketDir" and value:
        return (
            "daemonSocketDir: the shim finds multinetd at daemonSocketPath (default "
            "/run/multinet/multinet.sock); socketDir serves Multus's own shim"
        )
    if key == "auxiliaryCNIChainName" and value:
        return "auxiliaryCNIChainName: not supported by multinet"
    return None


NOT_FORWARDED = frozenset(DAEMON_SCHEMA["properties"]) | frozenset(MULTUS_SCHEMA["properties"])


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
    # Multus's keys: socketDir (its shim's API is served at <socketDir>/multus.sock),
    # multusAutoconfigDir (where the primary is found; '' = cni_config_dir),
    # multusConfigFile (a path: installed in cni_config_dir as is, nothing generated),
    # overrideNetworkName (the generated conflist takes the primary's name).
    multus_socket_dir: str = ""
    primary_config_dir: str = ""
    user_config_file: str = ""
    override_network_name: bool = False
    # The reference DHCP client daemon, supervised (daemon.dhcpd): its socket (the dhcp
    # IPAM's daemonSocketPath default) and its executable ('' = `dhcp` in binDir, then
    # /opt/cni/bin, then /usr/lib/cni).
    dhcp_daemon: bool = False
    dhcp_socket_path: str = DEFAULT_DHCP_SOCKET
    dhcp_binary: str = ""
    # Running pods' interfaces follow their networks annotation (daemon.dynamic); a pod
    # is reconciled at most once per interval (seconds).
    dynamic_networks: bool = False
    dynamic_networks_interval: float = 1.0
    # Bounded work (daemon.admission): per lane, requests executing at once, waiting at
    # most, and seconds a waiting request waits at most.
    max_concurrent_requests: int = field(default_factory=default_concurrency)
    max_queued_requests: int = DEFAULT_QUEUED
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT
    # The kubeconfig (host path) the daemon writes with its own service-account token for
    # the shim's in-process fallback, and names in the generated conflist ('' = none).
    fallback_kubeconfig: str = ""
    # The other lane's (DEL, CHECK, STATUS, GC) limit; None: OTHER_CONCURRENCY_FACTOR x the
    # ADD lane's, at most OTHER_CONCURRENCY_CAP.
    max_concurrent_other: int | None = None
    # Memory-aware admission: the budget in MiB (None: the daemon's cgroup limit, "auto";
    # 0: off) and one request's expected peak in it, MiB.
    memory_budget_mib: float | None = None
    request_memory_cost_mib: float = DEFAULT_REQUEST_MEMORY_COST_MIB
    # GC from the runtime's own truth (daemon.gc): on, the runtime's CRI socket as the host
    # names it ('' = containerd's or CRI-O's default, whichever exists; under hostRoot),
    # seconds between passes, the journals' grace period, whether it only logs, and the
    # seconds of idle admission lanes a pass waits for.
    gc: bool = False
    gc_runtime_socket: str = ""
    gc_interval: float = DEFAULT_GC_INTERVAL
    gc_grace_period: float = DEFAULT_GC_GRACE
    gc_dry_run: bool = False
    gc_quiet_period: float = DEFAULT_GC_QUIET
    notes: tuple[str, ...] = ()  # warnings for the log (keys forwarded that nobody knows)

    @property
    def multus_socket_path(self) -> str:
        """Where Multus's shim finds the daemon ('' = Multus's API is not served)."""
        if not self.multus_socket_dir:
            return ""
        return os.path.join(self.multus_socket_dir, MULTUS_SOCKET_NAME)

    @property
    def max_concurrent_other_requests(self) -> int:
        if self.max_concurrent_other is not None:
            return self.max_concurrent_other
        wide = OTHER_CONCURRENCY_FACTOR * self.max_concurrent_requests
        return max(self.max_concurrent_requests, min(OTHER_CONCURRENCY_CAP, wide))

    @property
    def primary_dir(self) -> str:
        return self.primary_config_dir or self.cni_config_dir

    @property
    def cni_dir(self) -> str:
        return str(self.overrides.get("cniDir", DEFAULT_CNI_DIR))

    @property
    def readiness_indicator_file(self) -> str:
        return str(self.overrides.get("readinessindicatorfile", ""))

    @property
    def dhcp_bin_dirs(self) -> tuple[str, ...]:
        """Where the dhcp executable is looked for: binDir, then the usual places."""
        bin_dir = self.overrides.get("binDir")
        return ((str(bin_dir),) if bin_dir else ()) + DHCP_BIN_DIRS

    @property
    def host_root(self) -> str:
        """Where the host's / is in this container ('' = here): hostRoot."""
        return str(self.overrides.get("hostRoot", ""))

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


def _metrics_address(raw: Mapping[str, Any]) -> tuple[str, int] | None:
    address = parse_address(raw["metricsAddress"]) if raw.get("metricsAddress") else None
    port = raw.get("metricsPort")
    if port is None:
        return address
    if address is not None and address != ("", port):
        raise InvalidConfig(
            "invalid daemon configuration: metricsPort and metricsAddress disagree: keep "
            f'one (metricsPort {port} is metricsAddress ":{port}")'
        )
    return "", int(port)


def _concurrency(raw: Mapping[str, Any]) -> int:
    """maxConcurrentRequests, or Multus's connectionLimit (its cap on the connections
    served at once; the rest wait, as here)."""
    ours, multus = raw.get("maxConcurrentRequests"), raw.get("connectionLimit")
    if ours is not None and multus is not None and ours != multus:
        raise InvalidConfig(
            "invalid daemon configuration: maxConcurrentRequests and connectionLimit "
            f"disagree: keep one (connectionLimit {multus} is maxConcurrentRequests {multus})"
        )
    value = ours if ours is not None else multus
    return int(value) if value is not None else default_concurrency()


def _memory_budget(raw: Mapping[str, Any]) -> float | None:
    """memoryBudget: None for "auto" (the default: the daemon's cgroup limit), else MiB."""
    value = raw.get("memoryBudget", "auto")
    return None if value == "auto" else float(value)


def _config_file(raw: Mapping[str, Any]) -> str:
    """multusConfigFile: 'auto' (generate, the default) or a file installed as it is."""
    value = raw.get("multusConfigFile", "auto")
    if value == "auto":
        return ""
    if not os.path.isabs(value):
        raise InvalidConfig(
            f"invalid daemon configuration: multusConfigFile {value!r} is neither 'auto' nor "
            "an absolute path"
        )
    if raw.get("generateConfig") is True:
        raise InvalidConfig(
            "invalid daemon configuration: multusConfigFile names a file to install but "
            "generateConfig is true: keep one"
        )
    return str(value)


def _host_root(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Multus's chrootDir is multinet's hostRoot (delegates run chrooted into the host's /
    mounted there); '' and '/' mean no chroot in both."""
    chroot = raw.get("chrootDir", "")
    if chroot in ("", "/"):
        return {}
    host_root = raw.get("hostRoot")
    if host_root is not None and host_root != chroot:
        raise InvalidConfig(
            f"invalid daemon configuration: chrootDir {chroot!r} and hostRoot {host_root!r} "
            "disagree: keep hostRoot, multinet's name for Multus's chrootDir "
            f"(see {DOCS})"
        )
    return {"hostRoot": chroot}


def load(raw: Mapping[str, Any], environ: Mapping[str, str]) -> DaemonConfig:
    if not isinstance(raw, Mapping):
        raise InvalidConfig("invalid daemon configuration: expected a JSON object")
    schema.validate(raw, DAEMON_SCHEMA, "daemon configuration")
    schema.validate(raw, MULTUS_SCHEMA, "daemon configuration")
    for key in MULTUS_SCHEMA["properties"]:
        why = _refusal(key, raw[key]) if key in raw else None
        if why is not None:
            raise InvalidConfig(f"invalid daemon configuration: {why} (see {DOCS})")
    overrides = {k: v for k, v in raw.items() if k not in NOT_FORWARDED} | _host_root(raw)
    thin_schema = schemas.load("netconf.json")
    thin = dict(thin_schema, required=[])
    schema.validate(overrides, thin, "daemon configuration")
    unknown = sorted(k for k in overrides if k not in thin_schema["properties"])
    notes = tuple(
        f"daemon configuration key {k!r} is neither multinet's nor Multus's: it is forwarded "
        "into every request and the generated conflist as it is"
        for k in unknown
    )
    user_config = _config_file(raw)
    return DaemonConfig(
        socket_path=raw.get("daemonSocketPath", DEFAULT_SOCKET),
        node_name=raw.get("nodeName") or environ.get("NODE_NAME", ""),
        metrics_address=_metrics_address(raw),
        cni_config_dir=raw.get("cniConfigDir", DEFAULT_CNI_CONFIG_DIR),
        primary_config=raw.get("primaryConfig") or raw.get("multusMasterCNI", ""),
        generate_config=raw.get("generateConfig", not user_config),
        cleanup_config_on_exit=raw.get("cleanupConfigOnExit", False),
        conf_poll_interval=float(raw.get("confPollInterval", 1.0)),
        name=raw.get("name", DEFAULT_NAME),
        cni_version=raw.get("cniVersion", ""),
        overrides=overrides,
        multus_socket_dir=raw.get("socketDir", ""),
        primary_config_dir=raw.get("multusAutoconfigDir", ""),
        user_config_file=user_config,
        override_network_name=raw.get("overrideNetworkName", False),
        dhcp_daemon=raw.get("dhcpDaemon", False),
        dhcp_socket_path=raw.get("dhcpDaemonSocketPath", DEFAULT_DHCP_SOCKET),
        dhcp_binary=raw.get("dhcpDaemonBinary", ""),
        dynamic_networks=raw.get("dynamicNetworks", False),
        dynamic_networks_interval=float(raw.get("dynamicNetworksInterval", 1.0)),
        max_concurrent_requests=_concurrency(raw),
        max_queued_requests=raw.get("maxQueuedRequests", DEFAULT_QUEUED),
        queue_timeout=float(raw.get("queueTimeout", DEFAULT_QUEUE_TIMEOUT)),
        fallback_kubeconfig=_fallback_kubeconfig(raw, environ),
        max_concurrent_other=raw.get("maxConcurrentOtherRequests"),
        memory_budget_mib=_memory_budget(raw),
        request_memory_cost_mib=float(
            raw.get("requestMemoryCost", DEFAULT_REQUEST_MEMORY_COST_MIB)
        ),
        gc=raw.get("gc", False),
        gc_runtime_socket=raw.get("gcRuntimeSocket", ""),
        gc_interval=float(raw.get("gcInterval", DEFAULT_GC_INTERVAL)),
        gc_grace_period=float(raw.get("gcGracePeriod", DEFAULT_GC_GRACE)),
        gc_dry_run=raw.get("gcDryRun", False),
        gc_quiet_period=float(raw.get("gcQuietPeriod", DEFAULT_GC_QUIET)),
        notes=notes,
    )


FALLBACK_KUBECONFIG = "multinet.d/multinetd.kubeconfig"  # under cniConfigDir


def _fallback_kubeconfig(raw: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """`fallbackKubeconfig`; by default, with the service account (in a pod) and no
    `kubeconfig`, FALLBACK_KUBECONFIG under cniConfigDir (mounted at the host's path)."""
    if "fallbackKubeconfig" in raw:
        path = str(raw["fallbackKubeconfig"])
        if path and "kubeconfig" in raw:
            raise InvalidConfig(
                "invalid daemon configuration: fallbackKubeconfig: the daemon's `kubeconfig` "
                "is already the generated conflist's; give one or the other"
            )
        if path and not os.path.isabs(path):
            raise InvalidConfig(
                f"invalid daemon configuration: fallbackKubeconfig: {path!r} is not an "
                "absolute path"
            )
        return path
    if "kubeconfig" in raw or not environ.get("KUBERNETES_SERVICE_HOST"):
        return ""
    conf_dir = raw.get("cniConfigDir", DEFAULT_CNI_CONFIG_DIR)
    return os.path.join(conf_dir, FALLBACK_KUBECONFIG)


def load_file(path: str, environ: Mapping[str, str]) -> DaemonConfig:
    return load(read_object(path, "daemon configuration"), environ)
