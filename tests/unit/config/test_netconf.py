"""multinet's own configuration: defaults, every key, real Multus configurations, errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import IncompatibleVersion, InvalidConfig
from multinet.cni.version import SUPPORTED
from multinet.config import netconf
from multinet.config.netconf import NetConf


def minimal(version: str, **extra: Any) -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": "multinet-net",
        "type": "multinet",
        "clusterNetwork": "k8s-pod-network",
        **extra,
    }


@pytest.mark.parametrize("version", SUPPORTED)
def test_defaults(version: str) -> None:
    raw = minimal(version)
    assert netconf.load(raw) == NetConf(
        cni_version=version,
        name="multinet-net",
        type="multinet",
        delegates=(),
        kubeconfig="",
        manifests="",
        cluster_network="k8s-pod-network",
        default_networks=(),
        conf_dir="/etc/cni/multus/net.d",
        cni_dir="/var/lib/cni/multinet",
        bin_dir="/opt/cni/bin",
        system_namespaces=("kube-system",),
        multus_namespace="kube-system",
        namespace_isolation=False,
        global_namespaces=(),
        readiness_indicator_file="",
        log_level="",
        log_file="",
        log_to_stderr=True,
        retry_delete_on_error=False,
        capabilities={},
        runtime_config={},
        prev_result=None,
        delegate_timeout=60.0,
        parallel_attach=False,
        daemon_socket_path="/run/multinet/multinet.sock",
        raw=raw,
    )


@pytest.mark.parametrize("version", SUPPORTED)
def test_every_key_is_mapped(version: str) -> None:
    delegate = {"cniVersion": "0.4.0", "name": "flannel", "type": "flannel"}
    raw = {
        "cniVersion": version,
        "name": "everything",
        "type": "multinet",
        "kubeconfig": "/etc/cni/net.d/multinet.d/kubeconfig",
        "manifests": "/etc/multinet/manifests",
        "clusterNetwork": "calico",
        "defaultNetworks": ["sidecar", "tools/monitor"],
        "delegates": [delegate],
        "confDir": "/etc/cni/multinet/net.d",
        "cniDir": "/var/lib/cni/mn",
        "binDir": "/usr/lib/cni",
        "systemNamespaces": ["kube-system", "admin"],
        "multusNamespace": "multinet-system",
        "namespaceIsolation": True,
        "globalNamespaces": "default,shared",
        "readinessindicatorfile": "/run/flannel/subnet.env",
        "logLevel": "debug",
        "logFile": "/var/log/multinet.log",
        "logToStderr": False,
        "retryDeleteOnError": True,
        "capabilities": {"portMappings": True, "bandwidth": False},
        "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 8080}]},
        "prevResult": {"cniVersion": version, "interfaces": []},
        "args": {"cni": {"x": 1}},
        "delegateTimeout": 12,
        "parallelAttach": True,
        "daemonSocketPath": "/run/mn.sock",
    }
    conf = netconf.load(raw)
    assert conf.cni_version == version
    assert conf.name == "everything"
    assert conf.type == "multinet"
    assert conf.kubeconfig == "/etc/cni/net.d/multinet.d/kubeconfig"
    assert conf.manifests == "/etc/multinet/manifests"
    assert conf.cluster_network == "calico"
    assert conf.default_networks == ("sidecar", "tools/monitor")
    assert conf.delegates == (
        NetworkConfig(name="flannel", cni_version="0.4.0", plugins=(delegate,), is_list=False),
    )
    assert conf.conf_dir == "/etc/cni/multinet/net.d"
    assert conf.cni_dir == "/var/lib/cni/mn"
    assert conf.bin_dir == "/usr/lib/cni"
    assert conf.system_namespaces == ("kube-system", "admin")
    assert conf.multus_namespace == "multinet-system"
    assert conf.namespace_isolation is True
    assert conf.global_namespaces == ("default", "shared")
    assert conf.readiness_indicator_file == "/run/flannel/subnet.env"
    assert conf.log_level == "debug"
    assert conf.log_file == "/var/log/multinet.log"
    assert conf.log_to_stderr is False
    assert conf.retry_delete_on_error is True
    assert conf.capabilities == {"portMappings": True, "bandwidth": False}
    assert conf.runtime_config == {"portMappings": [{"hostPort": 80, "containerPort": 8080}]}
    assert conf.prev_result == {"cniVersion": version, "interfaces": []}
    assert conf.delegate_timeout == 12.0
    assert isinstance(conf.delegate_timeout, float)
    assert conf.parallel_attach is True
    assert conf.daemon_socket_path == "/run/mn.sock"
    assert conf.raw == raw
    assert conf.uses_cluster is True


@pytest.mark.parametrize(
    ("extra", "uses_cluster"),
    [
        ({"clusterNetwork": "calico"}, True),
        ({"delegates": [{"name": "d", "type": "bridge"}]}, False),
        ({"delegates": [{"name": "d", "type": "bridge"}], "kubeconfig": "/k"}, True),
        ({"delegates": [{"name": "d", "type": "bridge"}], "manifests": "/m"}, True),
        ({"delegates": [{"name": "d", "type": "bridge"}], "kubeconfig": ""}, False),
    ],
)
def test_uses_cluster(extra: dict[str, Any], uses_cluster: bool) -> None:
    raw = {"cniVersion": "1.0.0", "name": "n", "type": "multinet", **extra}
    assert netconf.load(raw).uses_cluster is uses_cluster


@pytest.mark.parametrize("version", SUPPORTED)
def test_delegates_inherit_the_version(version: str) -> None:
    raw = minimal(
        version,
        delegates=[
            {"name": "a", "type": "bridge"},
            {"name": "b", "cniVersion": "0.3.1", "plugins": [{"type": "ptp"}]},
            {"name": "c", "cniVersions": ["0.4.0", "1.0.0"], "plugins": [{"type": "tuning"}]},
        ],
    )
    a, b, c = netconf.load(raw).delegates
    assert (a.name, a.cni_version, a.is_list) == ("a", version, False)
    assert (b.name, b.cni_version, b.is_list) == ("b", "0.3.1", True)
    assert (c.name, c.cni_version) == ("c", "1.0.0")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("default,namespace-a,namespace-b", ("default", "namespace-a", "namespace-b")),
        (" default , ns-a ,, ", ("default", "ns-a")),
        ("default", ("default",)),
        ("", ()),
        (["default", "ns-a"], ("default", "ns-a")),
        ([" default ", "", "ns-a"], ("default", "ns-a")),
        ([], ()),
    ],
)
def test_global_namespaces(value: Any, expected: tuple[str, ...]) -> None:
    assert netconf.load(minimal("1.0.0", globalNamespaces=value)).global_namespaces == expected


def test_loading_does_not_depend_on_later_changes_to_the_input() -> None:
    raw = minimal("1.0.0", defaultNetworks=["a"], capabilities={"ips": True})
    conf = netconf.load(raw)
    raw["defaultNetworks"].append("b")
    raw["capabilities"]["mac"] = True
    raw["name"] = "changed"
    assert conf.default_networks == ("a",)
    assert conf.capabilities == {"ips": True}
    assert conf.name == "multinet-net"
    assert conf.raw["name"] == "multinet-net"


# -- real Multus configurations, with "type" changed to "multinet" ----------------------------

# The example of k8snetworkplumbingwg/multus-cni docs/configuration.md (its "... (snip)"
# macvlan delegate completed), with named delegates.
MULTUS_DOCS = """
{
    "cniVersion": "0.3.1",
    "name": "node-cni-network",
    "type": "multus",
    "kubeconfig": "/etc/kubernetes/node-kubeconfig.yaml",
    "confDir": "/etc/cni/multus/net.d",
    "cniDir": "/var/lib/cni/multus",
    "binDir": "/opt/cni/bin",
    "logFile": "/var/log/multus.log",
    "logLevel": "debug",
    "logOptions": {
        "maxAge": 5,
        "maxSize": 100,
        "maxBackups": 5,
        "compress": true
    },
    "capabilities": {
        "portMappings": true
    },
    "readinessindicatorfile": "",
    "namespaceIsolation": false,
"Note1":"NOTE: you can set clusterNetwork+defaultNetworks OR delegates!!",
    "clusterNetwork": "defaultCRD",
    "defaultNetworks": ["sidecarCRD", "flannel"],
    "systemNamespaces": ["kube-system", "admin"],
    "multusNamespace": "kube-system",
"Note2":"NOTE: If you use clusterNetwork/defaultNetworks, delegates is ignored",
    "delegates": [{
        "name": "weave",
        "type": "weave-net",
        "hairpinMode": true
    }, {
        "name": "macvlan",
        "type": "macvlan",
        "master": "eth0",
        "mode": "bridge",
        "ipam": {"type": "host-local", "subnet": "192.168.1.0/24"}
    }]
}
"""

# deployments/multus-daemonset.yml's cni-conf.json as the thin entrypoint writes it
# (it adds the delegate's cniVersion at the top level).
MULTUS_THIN = """
{
  "cniVersion": "0.3.1",
  "name": "multus-cni-network",
  "type": "multus",
  "capabilities": {
    "portMappings": true
  },
  "delegates": [
    {
      "cniVersion": "0.3.1",
      "name": "default-cni-network",
      "plugins": [
        {
          "type": "flannel",
          "name": "flannel.1",
            "delegate": {
              "isDefaultGateway": true,
              "hairpinMode": true
            }
          },
          {
            "type": "portmap",
            "capabilities": {
              "portMappings": true
            }
          }
      ]
    }
  ],
  "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig"
}
"""

# Thick mode: the shim's netconf as multus-daemon generates it, merged with the
# daemon-config.json of deployments/multus-daemonset-thick.yml.
MULTUS_DAEMON = """
{
  "cniVersion": "0.3.1",
  "name": "multus-cni-network",
  "type": "multus-shim",
  "logLevel": "verbose",
  "logToStderr": true,
  "clusterNetwork": "/host/etc/cni/net.d/10-flannel.conflist",
  "chrootDir": "/hostroot",
  "cniConfigDir": "/host/etc/cni/net.d",
  "multusAutoconfigDir": "/host/etc/cni/net.d",
  "multusConfigFile": "auto",
  "socketDir": "/host/run/multus/"
}
"""


def as_multinet(text: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(text)
    raw["type"] = "multinet"
    return raw


def test_multus_documented_config_loads() -> None:
    raw = as_multinet(MULTUS_DOCS)
    before = copy.deepcopy(raw)
    conf = netconf.load(raw)
    assert raw == before
    assert conf.cni_version == "0.3.1"
    assert conf.name == "node-cni-network"
    assert conf.kubeconfig == "/etc/kubernetes/node-kubeconfig.yaml"
    assert conf.cni_dir == "/var/lib/cni/multus"
    assert conf.log_level == "debug"
    assert conf.capabilities == {"portMappings": True}
    assert conf.cluster_network == "defaultCRD"
    assert conf.default_networks == ("sidecarCRD", "flannel")
    assert conf.system_namespaces == ("kube-system", "admin")
    assert [d.name for d in conf.delegates] == ["weave", "macvlan"]
    assert conf.delegates[1].plugins[0]["master"] == "eth0"
    assert conf.raw["logOptions"] == {
        "maxAge": 5,
        "maxSize": 100,
        "maxBackups": 5,
        "compress": True,
    }


def test_multus_documented_config_with_nameless_delegates_loads() -> None:
    # Multus accepts delegates without a name; they take the meta-plugin's name.
    raw = as_multinet(MULTUS_DOCS)
    for d in raw["delegates"]:
        del d["name"]
    conf = netconf.load(raw)
    assert [d.name for d in conf.delegates] == [raw["name"], raw["name"]]


def test_multus_thin_daemonset_config_loads() -> None:
    conf = netconf.load(as_multinet(MULTUS_THIN))
    assert conf.name == "multus-cni-network"
    assert conf.kubeconfig == "/etc/cni/net.d/multus.d/multus.kubeconfig"
    assert conf.cluster_network == ""
    assert conf.uses_cluster is True
    (delegate,) = conf.delegates
    assert delegate.name == "default-cni-network"
    assert [p["type"] for p in delegate.plugins] == ["flannel", "portmap"]
    assert delegate.plugins[0]["name"] == "flannel.1"
    assert delegate.capabilities() == {"portMappings"}


def test_multus_daemon_style_config_loads() -> None:
    conf = netconf.load(as_multinet(MULTUS_DAEMON))
    assert conf.cluster_network == "/host/etc/cni/net.d/10-flannel.conflist"
    assert conf.log_level == "verbose"
    assert conf.log_to_stderr is True
    assert conf.delegates == ()
    assert conf.raw["socketDir"] == "/host/run/multus/"
    assert conf.raw["chrootDir"] == "/hostroot"


def test_multus_configmap_without_top_level_cni_version_is_rejected() -> None:
    # The ConfigMap in deployments/multus-daemonset.yml has no top-level cniVersion.
    raw = as_multinet(MULTUS_THIN)
    del raw["cniVersion"]
    with pytest.raises(InvalidConfig) as e:
        netconf.load(raw)
    assert e.value.msg == "invalid multinet configuration: required key 'cniVersion' is missing"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("extra", [{}, {"delegates": []}, {"clusterNetwork": None}])
def test_needs_delegates_or_cluster_network(version: str, extra: dict[str, Any]) -> None:
    raw = {"cniVersion": version, "name": "n", "type": "multinet", **extra}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(InvalidConfig) as e:
        netconf.load(raw)
    assert e.value.code == 7
    assert e.value.msg == (
        "invalid multinet configuration: either 'delegates' or 'clusterNetwork' is required"
    )


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "1.2.0", "2.0.0"])
def test_unsupported_version_is_code_1(version: str) -> None:
    with pytest.raises(IncompatibleVersion) as e:
        netconf.load(minimal(version))
    assert e.value.code == 1
    assert e.value.msg == f"incompatible CNI version {version!r}"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": ""}, "invalid multinet configuration: name: must not be empty"),
        ({"cniVersion": "1.0"}, 'invalid multinet configuration: cniVersion: "1.0" does not match'),
        ({"delegateTimeout": 0}, "invalid multinet configuration: delegateTimeout: 0 must be"),
        ({"logLevel": 2}, "invalid multinet configuration: logLevel: expected string, got 2"),
        ({"globalNamespaces": 3}, "invalid multinet configuration: globalNamespaces: expected"),
        ({"delegates": [{"type": "b", "name": ""}]}, "delegates[0]: name is missing"),
        (
            {"delegates": [{"name": "a", "type": "bridge"}, {"name": "b", "type": "../x"}]},
            "delegates[1]: config: plugin type '../x' is invalid",
        ),
        ({"delegates": [{"name": "a", "plugins": []}]}, "delegates[0]: plugins must be"),
        (
            {"delegates": [{"name": "a", "cniVersion": "x", "type": "bridge"}]},
            "delegates[0]: cniVersion: invalid cniVersion 'x'",
        ),
    ],
)
def test_errors(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        netconf.load(minimal("1.0.0", **extra))
    assert e.value.code == 7
    assert e.value.msg.startswith(message)


@pytest.mark.parametrize(
    ("given", "read"),
    [("Debug", "debug"), ("VERBOSE", "verbose"), ("warn", "warn"), ("loud", ""), ("", "")],
)
def test_log_level_is_read_as_multus_reads_it(
    given: str, read: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Case-insensitive; a level Multus does not know is ignored with a word on stderr."""
    conf = netconf.load(minimal("1.0.0", logLevel=given))
    assert conf.log_level == read
    assert ("unknown logLevel" in capsys.readouterr().err) == (given == "loud")
