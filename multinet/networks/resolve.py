"""Turn network references into network configs: NADs, config names in confDir, paths.

`clusterNetwork` and `defaultNetworks` entries may be a NAD name (in multusNamespace),
the `name` of a config file in confDir, or a path to a file or directory; pod
selections always name a NAD, whose empty spec means "the confDir file of that name".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from multinet.cluster.base import NAD, Cluster
from multinet.cni import chain
from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import InvalidConfig, NetworkNotFound
from multinet.cni.strictjson import JSONError, loads
from multinet.config.jsonfile import read_object
from multinet.config.netconf import NetConf

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from multinet.record import NamedTuple

CONFIG_SUFFIXES = (".conf", ".conflist", ".json")


class Resolved(NamedTuple):  # not a dataclass: ~1 ms less of thin mode's per-call imports
    """A network ready to attach: its network-status name and its config."""

    name: str
    network: NetworkConfig
    nad: NAD | None = None


def config_files(directory: str) -> list[str]:
    """CNI config files of a directory in the order libcni loads them (by name)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names if n.endswith(CONFIG_SUFFIXES)]


class Resolver:
    def __init__(self, conf: NetConf, cluster: Cluster | None) -> None:
        self.conf = conf
        self.cluster = cluster

    def _load(self, raw: Mapping[str, Any], where: str, name: str | None = None) -> NetworkConfig:
        return chain.load(
            raw, where=where, default_name=name, default_version=self.conf.cni_version
        )

    def file(self, path: str) -> NetworkConfig:
        if not os.path.exists(path):
            raise NetworkNotFound(f"network {path} not found: no such file or directory")
        if os.path.isdir(path):
            files = config_files(path)
            if not files:
                raise NetworkNotFound(f"no CNI config file in directory {path}")
            path = files[0]
        return self._load(read_object(path, "CNI config"), path)

    def by_config_name(self, name: str) -> NetworkConfig | None:
        """The confDir file whose `name` is `name` (unreadable files are skipped)."""
        for path in config_files(self.conf.conf_dir):
            try:
                raw = read_object(path, "CNI config")
            except InvalidConfig:
                continue
            if raw.get("name") == name:
                return self._load(raw, path)
        return None

    def nad_config(self, nad: NAD) -> NetworkConfig:
        where = f"NetworkAttachmentDefinition {nad.key} spec.config"
        if not nad.config.strip():
            found = self.by_config_name(nad.name)
            if found is None:
                raise NetworkNotFound(
                    f"NetworkAttachmentDefinition {nad.key} has an empty spec and "
                    f"{self.conf.conf_dir} has no config named {nad.name!r}"
                )
            return found
        try:
            raw = loads(nad.config)
        except JSONError as e:
            raise InvalidConfig(f"{where} is not valid JSON", str(e)) from None
        return self._load(raw, where, name=nad.name)

    def nad(self, namespace: str, name: str) -> Resolved:
        if self.cluster is None:
            raise InvalidConfig(
                f"network {namespace}/{name} is a NetworkAttachmentDefinition but no cluster "
                "source is configured (set 'kubeconfig' or 'manifests')"
            )
        nad = self.cluster.get_nad(namespace, name)
        if nad is None:
            raise NetworkNotFound(f"NetworkAttachmentDefinition {namespace}/{name} not found")
        return Resolved(nad.key, self.nad_config(nad), nad)

    def reference(self, ref: str) -> Resolved:
        """A clusterNetwork/defaultNetworks entry: path, NAD in multusNamespace, or conf name."""
        if ref.startswith("/"):
            net = self.file(ref)
            return Resolved(net.name, net)
        if self.cluster is not None and "/" not in ref:
            nad = self.cluster.get_nad(self.conf.multus_namespace, ref)
            if nad is not None:
                return Resolved(nad.key, self.nad_config(nad), nad)
        net_or_none = self.by_config_name(ref)
        if net_or_none is None:
            raise NetworkNotFound(
                f"network {ref!r} not found: no NetworkAttachmentDefinition "
                f"{self.conf.multus_namespace}/{ref} and no config named {ref!r} "
                f"in {self.conf.conf_dir}"
            )
        return Resolved(net_or_none.name, net_or_none)
