"""The netconf JSON schema is valid, and multinet's mini validator agrees with jsonschema."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import jsonschema
import pytest

from multinet import schemas
from multinet.cni.errors import InvalidConfig
from multinet.cni.version import SUPPORTED
from multinet.config import schema

NETCONF = schemas.load("netconf.json")
BASE = {"cniVersion": "1.0.0", "name": "multinet-net", "type": "multinet"}


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(NETCONF)
    assert NETCONF["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_property_is_covered_by_the_tables() -> None:
    covered = {key for key, _ in GOOD} | {key for key, _ in BAD}
    assert set(NETCONF["properties"]) <= covered


PATH_KEYS = (
    "kubeconfig",
    "manifests",
    "clusterNetwork",
    "confDir",
    "cniDir",
    "binDir",
    "readinessindicatorfile",
    "logFile",
    "daemonSocketPath",
    "podResourcesSocket",
    "deviceCheckpointFile",
    "deviceInfoDir",
)

# (key, value) pairs merged into BASE: each must be accepted.
GOOD: list[tuple[str, Any]] = [
    *[("cniVersion", v) for v in SUPPORTED],
    ("cniVersion", "10.20.30"),
    ("name", "n"),
    ("name", "multus-cni-network"),
    ("type", "multus"),
    ("kubeconfig", "/etc/cni/net.d/multus.d/multus.kubeconfig"),
    ("kubeconfig", ""),
    ("manifests", "/etc/multinet/manifests"),
    ("clusterNetwork", "k8s-pod-network"),
    ("clusterNetwork", "/host/etc/cni/net.d/10-flannel.conflist"),
    ("defaultNetworks", []),
    ("defaultNetworks", ["sidecar", "kube-system/flannel"]),
    ("delegates", []),
    ("delegates", [{"type": "bridge"}, {"name": "x", "plugins": []}]),
    ("confDir", "/etc/cni/multus/net.d"),
    ("cniDir", "/var/lib/cni/multus"),
    ("binDir", "/opt/cni/bin"),
    ("systemNamespaces", []),
    ("systemNamespaces", ["kube-system", "admin", ""]),
    ("multusNamespace", "kube-system"),
    ("namespaceIsolation", True),
    ("namespaceIsolation", False),
    ("globalNamespaces", "default,namespace-a,namespace-b"),
    ("globalNamespaces", ""),
    ("globalNamespaces", ["default", "namespace-a"]),
    ("globalNamespaces", []),
    ("readinessindicatorfile", ""),
    ("readinessindicatorfile", "/host/run/flannel/subnet.env"),
    # Any string: the netconf reads it as Multus does (case-insensitive, unknown ignored).
    *[("logLevel", v) for v in ("debug", "Verbose", "info", "warn", "PANIC", "", "trace")],
    ("readinessTimeout", 0),
    ("readinessTimeout", 12.5),
    ("defaultNetworksOptOut", False),
    ("journalFsync", True),
    ("logFile", "/var/log/multus.log"),
    ("logToStderr", True),
    ("logToStderr", False),
    ("retryDeleteOnError", True),
    ("capabilities", {}),
    ("capabilities", {"portMappings": True, "bandwidth": False}),
    ("runtimeConfig", {}),
    ("runtimeConfig", {"portMappings": [{"hostPort": 80}], "anything": None}),
    ("prevResult", {"cniVersion": "1.0.0", "interfaces": []}),
    ("args", {"cni": {"ips": ["10.0.0.1"]}}),
    ("delegateTimeout", 0.5),
    ("delegateTimeout", 60),
    ("delegateTimeout", 1e-9),
    ("dhcpTimeout", 5),
    ("parallelAttach", True),
    ("daemonSocketPath", "/run/multinet/multinet.sock"),
    ("podResourcesSocket", "/var/lib/kubelet/pod-resources/kubelet.sock"),
    ("deviceCheckpointFile", "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"),
    ("deviceInfoDir", "/var/run/k8s.cni.cncf.io/devinfo"),
    # Any other character is a valid path character, non-ASCII ones included.
    *[(key, "/var/lib/caf\u00e9/\U0001f600 \ue000") for key in PATH_KEYS],
    # Unknown keys of any type are accepted (Multus keys we do not use).
    ("logOptions", {"maxAge": 5, "maxSize": 100, "maxBackups": 5, "compress": True}),
    ("chrootDir", "/hostroot"),
    ("hostRoot", "/hostroot"),
    ("hostRoot", ""),
    ("Note1", "NOTE: you can set clusterNetwork+defaultNetworks OR delegates!!"),
    ("x-number", 3),
    ("x-null", None),
]

# (key, value) pairs merged into BASE: each must be rejected.
BAD: list[tuple[str, Any]] = [
    ("hostRoot", "hostroot"),
    ("hostRoot", 1),
    ("cniVersion", 1),
    ("cniVersion", 1.0),
    ("cniVersion", None),
    ("cniVersion", "1.0"),
    ("cniVersion", "v1.0.0"),
    ("cniVersion", "1.0.0-rc1"),
    ("cniVersion", ""),
    ("name", ""),
    ("name", 5),
    ("name", None),
    ("name", ["n"]),
    ("type", ""),
    ("type", {"t": 1}),
    ("kubeconfig", 1),
    ("kubeconfig", None),
    ("manifests", ""),
    ("manifests", True),
    ("clusterNetwork", ""),
    ("clusterNetwork", ["net"]),
    ("defaultNetworks", "sidecar"),
    ("defaultNetworks", [""]),
    ("defaultNetworks", ["ok", 3]),
    ("defaultNetworks", {"a": "b"}),
    ("delegates", {"type": "bridge"}),
    ("delegates", ["bridge"]),
    ("delegates", [{"type": "bridge"}, None]),
    ("confDir", ""),
    ("confDir", 0),
    ("cniDir", ""),
    ("binDir", ""),
    ("binDir", ["/opt/cni/bin"]),
    ("systemNamespaces", "kube-system"),
    ("systemNamespaces", ["kube-system", 1]),
    ("multusNamespace", ""),
    ("namespaceIsolation", "true"),
    ("namespaceIsolation", 1),
    ("namespaceIsolation", None),
    ("globalNamespaces", 5),
    ("globalNamespaces", ["default", 5]),
    ("globalNamespaces", {"default": True}),
    ("globalNamespaces", None),
    ("readinessindicatorfile", False),
    ("logLevel", 1),
    ("logOptions", {"maxSize": -1}),
    ("logOptions", {"compress": "yes"}),
    ("readinessTimeout", -1),
    ("readinessTimeout", 601),
    ("defaultNetworksOptOut", "yes"),
    ("journalFsync", 1),
    ("logLevel", None),
    ("logFile", 1),
    ("logToStderr", "true"),
    ("logToStderr", 0),
    ("retryDeleteOnError", "false"),
    ("capabilities", []),
    ("capabilities", {"portMappings": "true"}),
    ("capabilities", {"portMappings": 1}),
    ("capabilities", {"ok": True, "bad": None}),
    ("runtimeConfig", []),
    ("runtimeConfig", "x"),
    ("prevResult", []),
    ("prevResult", "result"),
    ("args", ["K=V"]),
    ("args", "K=V"),
    ("delegateTimeout", 0),
    ("delegateTimeout", -1),
    ("delegateTimeout", "60"),
    ("delegateTimeout", True),
    ("delegateTimeout", None),
    ("dhcpTimeout", 0),
    ("dhcpTimeout", "30"),
    ("parallelAttach", "yes"),
    ("daemonSocketPath", ""),
    ("daemonSocketPath", 1),
    ("podResourcesSocket", ""),
    ("deviceCheckpointFile", 1),
    ("deviceInfoDir", ""),
    # Paths: no NUL, no lone surrogate (what a JSON "\\udcff" escape decodes to).
    *[
        (key, bad)
        for key in PATH_KEYS
        for bad in ("/var/lib/a\x00b", "/var/lib/\udcff", "\ud800", "/etc/\udfff/x")
    ],
    ("defaultNetworks", ["ok", "/etc/cni/\x00.conf"]),
]


def jsonschema_ok(value: Any) -> bool:
    return bool(jsonschema.Draft202012Validator(NETCONF).is_valid(value))


def ours_ok(value: Any) -> bool:
    return schema.problem(value, NETCONF, "") is None


@pytest.mark.parametrize(("key", "value"), GOOD)
def test_good_values_pass_both(key: str, value: Any) -> None:
    conf = {**BASE, key: value}
    assert jsonschema_ok(conf)
    assert ours_ok(conf)
    schema.validate(conf, NETCONF, "multinet configuration")


@pytest.mark.parametrize(("key", "value"), BAD)
def test_bad_values_fail_both(key: str, value: Any) -> None:
    conf = {**BASE, key: value}
    assert not jsonschema_ok(conf)
    found = schema.problem(conf, NETCONF, "")
    assert found is not None
    assert found.startswith(key)  # the message names the key path
    with pytest.raises(InvalidConfig) as e:
        schema.validate(conf, NETCONF, "multinet configuration")
    assert e.value.code == 7
    assert e.value.msg.startswith(f"invalid multinet configuration: {key}")


@pytest.mark.parametrize("missing", ["name", "type"])
def test_required_keys(missing: str) -> None:
    conf = {k: v for k, v in BASE.items() if k != missing}
    assert not jsonschema_ok(conf)
    with pytest.raises(InvalidConfig) as e:
        schema.validate(conf, NETCONF, "multinet configuration")
    assert e.value.msg == f"invalid multinet configuration: required key {missing!r} is missing"


@pytest.mark.parametrize("value", [[], "conf", None, 1, True])
def test_non_object_config(value: Any) -> None:
    assert not jsonschema_ok(value)
    assert schema.problem(value, NETCONF, "") == (
        f": expected object, got {__import__('json').dumps(value)}"
    )


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({**BASE, "cniVersion": 1}, "cniVersion: expected string, got 1"),
        ({**BASE, "defaultNetworks": ["a", 3]}, "defaultNetworks[1]: expected string, got 3"),
        ({**BASE, "defaultNetworks": ["a", ""]}, "defaultNetworks[1]: must not be empty"),
        (
            {**BASE, "capabilities": {"portMappings": "yes"}},
            'capabilities.portMappings: expected boolean, got "yes"',
        ),
        ({**BASE, "logLevel": 3}, "logLevel: expected string, got 3"),
        (
            {**BASE, "cniVersion": "1.0"},
            'cniVersion: "1.0" does not match ^[0-9]+\\.[0-9]+\\.[0-9]+$',
        ),
        ({**BASE, "delegateTimeout": 0}, "delegateTimeout: 0 must be greater than 0"),
        (
            {**BASE, "globalNamespaces": 5},
            "globalNamespaces: expected string or array, got 5",
        ),
        ({**BASE, "delegates": [{}, 2]}, "delegates[1]: expected object, got 2"),
        ({**BASE, "name": "x" * 100, "type": 1}, "type: expected string, got 1"),
    ],
)
def test_messages_name_the_key_path(conf: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        schema.validate(conf, NETCONF, "multinet configuration")
    assert e.value.msg == f"invalid multinet configuration: {message}"


def test_long_values_are_abbreviated() -> None:
    found = schema.problem({**BASE, "name": ["x" * 200]}, NETCONF, "")
    assert found is not None
    assert found.startswith('name: expected string, got ["xxx')
    assert found.endswith("...")
    assert len(found) == len("name: expected string, got ") + 80


# Keywords the mini validator implements beyond what netconf.json uses today, each checked
# against jsonschema so a future schema file can rely on them.
EXTRA_SCHEMA = {
    "type": "object",
    "properties": {
        "vlan": {"type": "integer", "minimum": 0, "maximum": 4094},
        "mode": {"enum": ["bridge", "private", "vepa", "passthru"]},
        "strict": {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "additionalProperties": False,
        },
        "opt": {"type": ["string", "null"]},
        "flag": {"enum": [1, "on", None]},
        "off": {"enum": [False, 0.5]},
        "list": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 1}},
    },
}


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"vlan": 0},
        {"vlan": 4094},
        {"vlan": -1},
        {"vlan": 4095},
        {"vlan": 10.5},
        {"vlan": True},
        {"vlan": "10"},
        {"mode": "bridge"},
        {"mode": "l2"},
        {"mode": None},
        {"strict": {"a": "x"}},
        {"strict": {"a": "x", "b": 1}},
        {"strict": {"a": 1}},
        {"opt": None},
        {"opt": "s"},
        {"opt": 1},
        {"list": [1.5, 2]},
        {"list": [1]},
        {"list": [False]},
        {"flag": 1},
        {"flag": 1.0},
        {"flag": True},
        {"flag": "on"},
        {"flag": None},
        {"flag": "1"},
        {"off": False},
        {"off": 0},
        {"off": 0.5},
    ],
)
def test_mini_validator_agrees_with_jsonschema_on_other_keywords(value: Any) -> None:
    expected = jsonschema.Draft202012Validator(EXTRA_SCHEMA).is_valid(value)
    assert (schema.problem(value, EXTRA_SCHEMA, "") is None) is expected


def test_netconf_does_not_import_jsonschema() -> None:
    code = "import sys, multinet.config.netconf; print('jsonschema' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
