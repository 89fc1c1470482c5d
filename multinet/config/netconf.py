"""multinet's own configuration (the stdin netconf), parsed once into a typed object.

Every Multus key is accepted with the same meaning; unknown keys are ignored so a
Multus configuration with `"type": "multinet"` loads unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from multinet import schemas
from multinet.cni import chain, version
from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import InvalidConfig
from multinet.cni.exec import DEFAULT_TIMEOUT
from multinet.config import logs, schema
from multinet.log import log
from multinet.record import field, record
from multinet.shim import protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Seconds an ADD waits for the readinessindicatorfile (Multus polls for 45 s).
READINESS_TIMEOUT = 45.0
# How long the ADD of a network with dhcp IPAM waits for its lease (within delegateTimeout):
# the reference daemon's first exchange waits 10 s for an answer and retries after a few
# seconds' back-off, so 30 s covers two full exchanges; without a bound it keeps trying
# for about 3 minutes, past the kubelet's 2 minute runtime request timeout.
DHCP_TIMEOUT = 30.0

DEFAULT_CONF_DIR = "/etc/cni/multus/net.d"
DEFAULT_CNI_DIR = "/var/lib/cni/multinet"
DEFAULT_BIN_DIR = "/opt/cni/bin"
DEFAULT_SOCKET = protocol.DEFAULT_SOCKET
# The kubelet's device assignments (cluster.podresources) and NPWG device-info files.
DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
DEFAULT_DEVICE_CHECKPOINT = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"
DEFAULT_DEVICE_INFO_DIR = "/var/run/k8s.cni.cncf.io/devinfo"


@record(frozen=True)
class NetConf:
    cni_version: str
    name: str
    type: str
    delegates: tuple[NetworkConfig, ...] = ()
    kubeconfig: str = ""
    manifests: str = ""
    cluster_network: str = ""
    default_networks: tuple[str, ...] = ()
    default_networks_opt_out: bool = True  # pods may skip them by annotation
    conf_dir: str = DEFAULT_CONF_DIR
    cni_dir: str = DEFAULT_CNI_DIR
    bin_dir: str = DEFAULT_BIN_DIR
    system_namespaces: tuple[str, ...] = ("kube-system",)
    multus_namespace: str = "kube-system"
    namespace_isolation: bool = False
    global_namespaces: tuple[str, ...] = ()
    readiness_indicator_file: str = ""
    readiness_timeout: float = READINESS_TIMEOUT
    log_level: str = ""
    log_file: str = ""
    log_to_stderr: bool = True
    log_options: logs.LogOptions = field(default_factory=logs.LogOptions)
    retry_delete_on_error: bool = False
    capabilities: Mapping[str, bool] = field(default_factory=dict)
    runtime_config: Mapping[str, Any] = field(default_factory=dict)
    prev_result: Mapping[str, Any] | None = None
    delegate_timeout: float = DEFAULT_TIMEOUT
    dhcp_timeout: float = DHCP_TIMEOUT
    parallel_attach: bool = False
    journal_fsync: bool = False  # the final save of an ADD also survives a power loss
    daemon_socket_path: str = DEFAULT_SOCKET
    pod_resources_socket: str = DEFAULT_POD_RESOURCES_SOCKET
    device_checkpoint: str = DEFAULT_DEVICE_CHECKPOINT
    device_info_dir: str = DEFAULT_DEVICE_INFO_DIR
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def uses_cluster(self) -> bool:
        """Pods and NADs come from a cluster (API or manifests), not static delegates only."""
        return bool(self.kubeconfig or self.manifests or self.cluster_network)


def _global_namespaces(value: object) -> tuple[str, ...]:
    # Multus takes a comma-separated string; a list is accepted too.
    items = value.split(",") if isinstance(value, str) else value
    assert isinstance(items, list)
    return tuple(s.strip() for s in items if s.strip())


def _sane_part(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The keys whose values pass their schema, defaults for the required ones; each value
    dropped is logged. For DEL, which must not depend on any setting being sane."""
    properties = schemas.load("netconf.json")["properties"]
    out: dict[str, Any] = {"cniVersion": version.LATEST, "name": "multinet", "type": "multinet"}
    for key, value in raw.items():
        sub = properties.get(key)
        problem = schema.problem(value, sub, key) if sub is not None else None
        if problem is None and isinstance(value, float) and not math.isfinite(value):
            problem = f"{key}: {value} is not a number"
        if problem is None and key == "cniVersion" and value not in version.ACCEPTED:
            problem = f"cniVersion: {value!r} is not supported"
        if problem:
            log.warning("DEL: ignoring an invalid setting (%s)", problem)
        else:
            out[key] = value
    return out


def _delegates(
    raw: Mapping[str, Any], cni_version: str, lenient: bool
) -> tuple[NetworkConfig, ...]:
    out = []
    for i, d in enumerate(raw.get("delegates", [])):
        try:
            # A nameless delegate takes multinet's name, as a plugin in a conflist does.
            out.append(
                chain.load(
                    d,
                    where=f"delegates[{i}]",
                    default_name=raw["name"],
                    default_version=cni_version,
                )
            )
        except InvalidConfig as e:
            if not lenient:
                raise
            log.warning("DEL: ignoring an invalid delegate (%s)", e)
    return tuple(out)


def load(raw: Mapping[str, Any], *, lenient: bool = False) -> NetConf:
    """The typed configuration. `lenient` (DEL) drops, with a warning, every setting that is
    invalid instead of refusing the whole configuration: a DEL works from the journal and
    must never fail over a setting, a version or a delegate that is not sane."""
    if lenient:
        raw = _sane_part(raw)
    schema.validate(raw, schemas.load("netconf.json"), "multinet configuration")
    # Missing: 0.1.0, as libcni and Multus read it.
    cni_version = version.require_supported(raw.get("cniVersion", "0.1.0"))
    delegates = _delegates(raw, cni_version, lenient)
    if not delegates and not raw.get("clusterNetwork") and not lenient:
        raise InvalidConfig(
            "invalid multinet configuration: either 'delegates' or 'clusterNetwork' is required"
        )
    return NetConf(
        cni_version=cni_version,
        name=raw["name"],
        type=raw["type"],
        delegates=delegates,
        kubeconfig=raw.get("kubeconfig", ""),
        manifests=raw.get("manifests", ""),
        cluster_network=raw.get("clusterNetwork", ""),
        default_networks=tuple(raw.get("defaultNetworks", ())),
        default_networks_opt_out=raw.get("defaultNetworksOptOut", True),
        conf_dir=raw.get("confDir", DEFAULT_CONF_DIR),
        cni_dir=raw.get("cniDir", DEFAULT_CNI_DIR),
        bin_dir=raw.get("binDir", DEFAULT_BIN_DIR),
        system_namespaces=tuple(raw.get("systemNamespaces", ("kube-system",))),
        multus_namespace=raw.get("multusNamespace", "kube-system"),
        namespace_isolation=raw.get("namespaceIsolation", False),
        global_namespaces=_global_namespaces(raw.get("globalNamespaces", [])),
        readiness_indicator_file=raw.get("readinessindicatorfile", ""),
        readiness_timeout=float(raw.get("readinessTimeout", READINESS_TIMEOUT)),
        log_level=logs.level_name(raw.get("logLevel", "")),
        log_file=raw.get("logFile", ""),
        log_to_stderr=raw.get("logToStderr", True),
        log_options=logs.LogOptions.from_netconf(raw.get("logOptions", {})),
        retry_delete_on_error=raw.get("retryDeleteOnError", False),
        capabilities=dict(raw.get("capabilities", {})),
        runtime_config=dict(raw.get("runtimeConfig", {})),
        prev_result=raw.get("prevResult"),
        delegate_timeout=float(raw.get("delegateTimeout", DEFAULT_TIMEOUT)),
        dhcp_timeout=float(raw.get("dhcpTimeout", DHCP_TIMEOUT)),
        parallel_attach=raw.get("parallelAttach", False),
        journal_fsync=raw.get("journalFsync", False),
        daemon_socket_path=raw.get("daemonSocketPath", DEFAULT_SOCKET),
        pod_resources_socket=raw.get("podResourcesSocket", DEFAULT_POD_RESOURCES_SOCKET),
        device_checkpoint=raw.get("deviceCheckpointFile", DEFAULT_DEVICE_CHECKPOINT),
        device_info_dir=raw.get("deviceInfoDir", DEFAULT_DEVICE_INFO_DIR),
        raw=dict(raw),
    )
