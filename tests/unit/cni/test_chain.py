"""Network configs and conflists: loading, per-plugin injection (libcni's rules) and running
chains of fake plugins (executable scripts in tmp_path that record what they were given)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import pytest

from multinet.cni import chain
from multinet.cni.chain import GC_KEY, NetworkConfig, load, plugin_config
from multinet.cni.errors import CNIError, DelegateError, InvalidConfig, PluginNotFound
from multinet.cni.exec import Invocation
from multinet.cni.version import SUPPORTED, at_least
from tests.support.recorder import Call, Recorder

# -- load -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_load_single_config(version: str) -> None:
    raw: dict[str, Any] = {
        "cniVersion": version,
        "name": "blue",
        "type": "bridge",
        "bridge": "br-blue",
        "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"},
    }
    net = load(raw)
    assert net == NetworkConfig(name="blue", cni_version=version, plugins=(raw,), is_list=False)
    assert net.type == "bridge"
    raw["ipam"]["subnet"] = "changed"
    assert net.plugins[0]["ipam"]["subnet"] == "10.1.0.0/16"  # a deep copy


@pytest.mark.parametrize("version", SUPPORTED)
def test_load_conflist(version: str) -> None:
    plugins = [
        {"type": "bridge", "bridge": "br0"},
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "bandwidth", "capabilities": {"bandwidth": True, "mac": False}},
    ]
    raw = {"cniVersion": version, "name": "green", "plugins": plugins, "disableCheck": True}
    net = load(raw)
    assert net.name == "green"
    assert net.cni_version == version
    assert net.plugins == tuple(plugins)
    assert net.is_list is True
    assert net.disable_check is True
    assert net.disable_gc is False
    assert net.type == "bridge"
    assert net.capabilities() == {"portMappings", "bandwidth"}
    assert net.to_dict() == {
        "cniVersion": version,
        "name": "green",
        "plugins": plugins,
        "disableCheck": True,
    }
    assert load(net.to_dict()) == net


def test_to_dict_of_a_single_config_is_a_conflist() -> None:
    net = load({"cniVersion": "1.0.0", "name": "n", "type": "macvlan", "master": "eth0"})
    assert net.to_dict() == {
        "cniVersion": "1.0.0",
        "name": "n",
        "plugins": [{"cniVersion": "1.0.0", "name": "n", "type": "macvlan", "master": "eth0"}],
    }
    flags = load({"cniVersion": "1.1.0", "name": "n", "type": "x", "disableGC": True}).to_dict()
    assert flags["disableGC"] is True
    assert "disableCheck" not in flags


@pytest.mark.parametrize("version", SUPPORTED)
def test_defaults_for_name_and_version(version: str) -> None:
    net = load({"type": "bridge"}, default_name="ns1/blue", default_version=version)
    assert (net.name, net.cni_version) == ("ns1/blue", version)
    explicit = load(
        {"name": "own", "cniVersion": "0.4.0", "type": "bridge"},
        default_name="ns1/blue",
        default_version=version,
    )
    assert (explicit.name, explicit.cni_version) == ("own", "0.4.0")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"cniVersions": ["0.3.1", "1.0.0"]}, "1.0.0"),
        ({"cniVersions": ["1.0.0", "1.1.0", "0.4.0"]}, "1.1.0"),
        ({"cniVersions": ["1.0.0", "2.0.0", "1.5.0"]}, "1.0.0"),
        ({"cniVersions": ["junk", "0.4.0"]}, "0.4.0"),
        ({"cniVersion": "0.4.0", "cniVersions": ["1.0.0"]}, "1.0.0"),
        # libcni: the config's own cniVersion is one of the candidates.
        ({"cniVersion": "1.1.0", "cniVersions": ["1.0.0"]}, "1.1.0"),
        ({"cniVersion": "9.0.0", "cniVersions": ["1.0.0"]}, "1.0.0"),
        # Nothing usable in cniVersions: cniVersion (or the default) stands.
        ({"cniVersion": "0.3.1", "cniVersions": ["9.9.9"]}, "0.3.1"),
        ({"cniVersion": "0.3.1", "cniVersions": []}, "0.3.1"),
        ({"cniVersions": ["9.9.9"]}, "0.4.0"),
    ],
)
def test_cni_versions_negotiation(raw: dict[str, Any], expected: str) -> None:
    conflist = {"name": "n", "plugins": [{"type": "bridge"}], **raw}
    assert load(conflist, default_version="0.4.0").cni_version == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("TRUE", True), ("False", False)],
)
@pytest.mark.parametrize(
    ("key", "attr"), [("disableCheck", "disable_check"), ("disableGC", "disable_gc")]
)
def test_disable_flags_accept_libcni_spellings(
    key: str, attr: str, value: Any, expected: bool
) -> None:
    net = load({"cniVersion": "1.1.0", "name": "n", "plugins": [{"type": "x"}], key: value})
    assert getattr(net, attr) is expected


WHERE = "ns1/blue"

# (config, substring of the message after the `where` prefix); every message names the key.
LOAD_ERRORS: list[tuple[Any, str]] = [
    ({"cniVersion": "1.0.0", "type": "bridge"}, "name is missing or not a non-empty string"),
    ({"cniVersion": "1.0.0", "name": "", "type": "bridge"}, "name is missing"),
    ({"cniVersion": "1.0.0", "name": 7, "type": "bridge"}, "name is missing"),
    ({"name": "n", "type": "bridge"}, "cniVersion is missing or not a string"),
    ({"name": "n", "cniVersion": 1, "type": "bridge"}, "cniVersion is missing or not a string"),
    ({"name": "n", "cniVersion": "", "type": "bridge"}, "cniVersion is missing"),
    ({"name": "n", "cniVersion": "1.0", "type": "bridge"}, "cniVersion: invalid cniVersion '1.0'"),
    ({"name": "n", "cniVersions": "1.0.0", "type": "x"}, "cniVersions must be a list of strings"),
    ({"name": "n", "cniVersions": ["1.0.0", 1], "type": "x"}, "cniVersions must be a list"),
    ({"name": "n", "cniVersions": ["9.9.9"], "type": "x"}, "cniVersion is missing"),
    ({"name": "n", "cniVersion": "1.0.0", "type": "x", "disableCheck": 1}, "disableCheck must be"),
    ({"name": "n", "cniVersion": "1.0.0", "type": "x", "disableCheck": "yes"}, "disableCheck"),
    ({"name": "n", "cniVersion": "1.0.0", "type": "x", "disableGC": None}, "disableGC must be"),
    ({"name": "n", "cniVersion": "1.0.0", "plugins": []}, "plugins must be a non-empty list"),
    ({"name": "n", "cniVersion": "1.0.0", "plugins": {"type": "x"}}, "plugins must be"),
    ({"name": "n", "cniVersion": "1.0.0", "plugins": None}, "plugins must be"),
    ({"name": "n", "cniVersion": "1.0.0", "plugins": ["bridge"]}, "plugins[0] must be a JSON"),
    (
        {"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "a"}, {"mtu": 1}]},
        "plugins[1] has no 'type'",
    ),
    ({"name": "n", "cniVersion": "1.0.0"}, "config has no 'type'"),
    (
        {"name": "n", "cniVersion": "1.0.0", "type": "../bridge"},
        "config: plugin type '../bridge' is invalid",
    ),
    (
        {"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "a"}, {"type": "/bin/sh"}]},
        "plugins[1]: plugin type '/bin/sh' is invalid",
    ),
    ({"name": "n", "cniVersion": "1.0.0", "type": ""}, "config: plugin type must be a non-empty"),
    ({"name": "n", "cniVersion": "1.0.0", "type": 5}, "config: plugin type must be"),
    (
        {"name": "n", "cniVersion": "1.0.0", "type": "x", "capabilities": ["ips"]},
        "config.capabilities must be an object",
    ),
    (
        {"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "x", "capabilities": True}]},
        "plugins[0].capabilities must be an object",
    ),
]


@pytest.mark.parametrize(("raw", "message"), LOAD_ERRORS)
def test_load_errors_name_the_key_and_where(raw: Any, message: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        load(raw, where=WHERE)
    assert e.value.code == 7
    assert e.value.msg.startswith(f"{WHERE}: ")
    assert message in e.value.msg
    with pytest.raises(InvalidConfig) as e:
        load(raw)
    assert e.value.msg.startswith(message.split(" ")[0])


@pytest.mark.parametrize("raw", [[], "conf", None, 3])
def test_load_rejects_non_objects(raw: Any) -> None:
    with pytest.raises(InvalidConfig) as e:
        load(raw, where=WHERE)
    assert e.value.msg == f"{WHERE} must be a JSON object"
    with pytest.raises(InvalidConfig) as e:
        load(raw)
    assert e.value.msg == "network config must be a JSON object"


# -- plugin_config ---------------------------------------------------------------------------

RUNTIME = {
    "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
    "bandwidth": {"ingressRate": 1000, "ingressBurst": 100},
    "ips": ["10.1.0.5/24"],
    "mac": "0a:58:0a:01:00:05",
    "deviceID": "0000:03:02.1",
}


@pytest.mark.parametrize("version", SUPPORTED)
def test_plugin_config_injects_name_version_and_filtered_runtime_config(version: str) -> None:
    net = load({"cniVersion": version, "name": "blue", "plugins": [{"type": "x"}]})
    plugin = {
        "type": "portmap",
        "name": "stale-name",
        "cniVersion": "0.1.0",
        "capabilities": {"portMappings": True, "bandwidth": False, "ips": "true", "mac": 1},
        "snat": True,
        "args": {"cni": {"labels": [{"key": "a", "value": "b"}]}},
        "x-unknown": {"keep": ["me", 1, None]},
    }
    original = copy.deepcopy(plugin)
    conf = plugin_config(net, plugin, RUNTIME, None)
    assert conf == {
        **original,
        "name": "blue",
        "cniVersion": version,
        "runtimeConfig": {"portMappings": RUNTIME["portMappings"]},
    }
    assert "prevResult" not in conf
    assert conf["args"] is plugin["args"]  # untouched, not rebuilt
    assert plugin == original  # the stored plugin is not modified


def _as_go_reads(conf: dict[str, Any], field: str) -> Any:
    """Go's encoding/json: the last key matching the field case-insensitively."""
    return [v for k, v in conf.items() if k.casefold() == field.casefold()][-1]


def test_a_plugins_own_spelling_of_an_injected_key_does_not_override_it() -> None:
    """A plugin's "NAME" after its "name" would be the network's name to a Go plugin
    (host-local's directory: outside its dataDir here); it is kept, but comes first."""
    net = load({"cniVersion": "1.0.0", "name": "blue", "plugins": [{"type": "x"}]})
    plugin = {
        "type": "bridge",
        "name": "stale",
        "NAME": "../../escape",
        "cniVersion": "0.1.0",
        "CNIVersion": "0.2.0",
        "capabilities": {"mac": True},
        "runtimeConfig": {"mac": "static"},
        "RuntimeConfig": {"mac": "other"},
    }
    conf = plugin_config(net, plugin, RUNTIME, {"cniVersion": "1.0.0"})
    assert _as_go_reads(conf, "name") == "blue"
    assert _as_go_reads(conf, "cniVersion") == "1.0.0"
    assert _as_go_reads(conf, "runtimeConfig") == {"mac": RUNTIME["mac"]}
    assert _as_go_reads(conf, "prevResult") == {"cniVersion": "1.0.0"}
    assert conf["NAME"] == "../../escape"  # kept, as libcni keeps it


@pytest.mark.parametrize(
    "plugin",
    [
        {"type": "bridge"},
        {"type": "bridge", "capabilities": {}},
        {"type": "bridge", "capabilities": {"portMappings": False}},
        {"type": "bridge", "capabilities": {"aliases": True}},  # no runtime value for it
    ],
)
def test_no_runtime_config_key_when_nothing_applies(plugin: dict[str, Any]) -> None:
    net = load({"cniVersion": "1.0.0", "name": "n", "plugins": [plugin]})
    assert "runtimeConfig" not in plugin_config(net, plugin, RUNTIME, None)


def test_static_runtime_config_is_kept_unless_something_is_injected() -> None:
    net = load({"cniVersion": "1.0.0", "name": "n", "type": "x"})
    static = {"type": "x", "runtimeConfig": {"static": 1}}
    assert plugin_config(net, static, RUNTIME, None)["runtimeConfig"] == {"static": 1}
    injected = {**static, "capabilities": {"mac": True, "ips": True}}
    assert plugin_config(net, injected, RUNTIME, None)["runtimeConfig"] == {
        "mac": RUNTIME["mac"],
        "ips": RUNTIME["ips"],
    }


def test_all_capabilities_true() -> None:
    net = load({"cniVersion": "1.1.0", "name": "n", "type": "x"})
    plugin = {"type": "sriov", "capabilities": {k: True for k in RUNTIME}}
    assert plugin_config(net, plugin, RUNTIME, None)["runtimeConfig"] == RUNTIME


@pytest.mark.parametrize("prev", [{"cniVersion": "1.0.0", "ips": []}, {}])
def test_prev_result_only_when_given(prev: dict[str, Any]) -> None:
    net = load({"cniVersion": "1.0.0", "name": "n", "type": "x"})
    assert plugin_config(net, {"type": "x"}, {}, prev)["prevResult"] == prev
    assert "prevResult" not in plugin_config(net, {"type": "x"}, {}, None)


# -- running chains against fake plugins ------------------------------------------------------


class Fakes:
    """A bin directory of recording fake plugins (tests.support.recorder) and their log."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.empty = root / "empty"
        self.empty.mkdir()
        self.recorder = Recorder(self.bin, root / "calls.jsonl")

    def plugin(self, name: str, fail: dict[str, int] | None = None, silent: bool = False) -> str:
        result: Literal["append", "none"] = "none" if silent else "append"
        return self.recorder.plugin(name, result=result, fail=fail, env_keys=["MARK"])

    def shell_plugin(self, name: str) -> str:
        """A /bin/sh plugin recording in the same log: its command and stdin only."""
        path = self.bin / name
        record = '{"plugin":"%s","env":{"CNI_COMMAND":"%s"},"conf":%s}\\n'
        path.write_text(
            "#!/bin/sh\n"
            "stdin=$(cat)\n"
            f'printf \'{record}\' "{name}" "$CNI_COMMAND" "$stdin" >> {self.recorder.log}\n'
        )
        path.chmod(0o755)
        return name

    def calls(self) -> list[Call]:
        return self.recorder.calls()

    def order(self) -> list[tuple[str, str]]:
        return [(c.plugin, c.command) for c in self.calls()]

    def invocation(self) -> Invocation:
        return Invocation(
            container_id="ctr-1",
            netns="/var/run/netns/pod1",
            ifname="net1",
            args="IgnoreUnknown=1;K8S_POD_NAME=web-0",
            path=(str(self.empty), str(self.bin)),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MARK": "m", "CNI_IFNAME": "x"},
        )


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


def conflist(version: str, *types: str, **extra: Any) -> NetworkConfig:
    plugins: list[dict[str, Any]] = [{"type": t} for t in types]
    plugins[-1]["capabilities"] = {"portMappings": True}
    return load({"cniVersion": version, "name": "blue", "plugins": plugins, **extra})


def expected_env(fakes: Fakes, command: str) -> dict[str, str]:
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "ctr-1",
        "CNI_NETNS": "/var/run/netns/pod1",
        "CNI_IFNAME": "net1",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web-0",
        "CNI_PATH": f"{fakes.empty}:{fakes.bin}",
        "MARK": "m",
    }


PORTS = {"portMappings": [{"hostPort": 80, "containerPort": 8080}], "mac": "0a:00:00:00:00:01"}


@pytest.mark.parametrize("version", SUPPORTED)
def test_add_runs_forward_and_threads_prev_result(fakes: Fakes, version: str) -> None:
    net = conflist(version, fakes.plugin("a"), fakes.plugin("b"), fakes.plugin("c"))
    result = chain.add(net, fakes.invocation(), PORTS)
    assert result == {
        "cniVersion": version,
        "interfaces": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
    }
    calls = fakes.calls()
    assert [c.plugin for c in calls] == ["a", "b", "c"]
    for c in calls:
        assert c.env == expected_env(fakes, "ADD")
        assert c.conf["name"] == "blue"
        assert c.conf["cniVersion"] == version
    assert "prevResult" not in calls[0].conf
    assert calls[1].conf["prevResult"] == {"cniVersion": version, "interfaces": [{"name": "a"}]}
    assert calls[2].conf["prevResult"]["interfaces"] == [{"name": "a"}, {"name": "b"}]
    assert "runtimeConfig" not in calls[0].conf
    assert calls[2].conf["runtimeConfig"] == {"portMappings": PORTS["portMappings"]}


@pytest.mark.parametrize("version", SUPPORTED)
def test_add_single_config(fakes: Fakes, version: str) -> None:
    net = load({"cniVersion": version, "name": "solo", "type": fakes.plugin("a"), "k": "v"})
    assert chain.add(net, fakes.invocation(), {}) == {
        "cniVersion": version,
        "interfaces": [{"name": "a"}],
    }
    (call,) = fakes.calls()
    assert call.conf == {"cniVersion": version, "name": "solo", "type": "a", "k": "v"}


def test_add_stops_at_the_first_failure_with_the_plugin_code(fakes: Fakes) -> None:
    net = conflist(
        "1.0.0", fakes.plugin("a"), fakes.plugin("b", fail={"ADD": 11}), fakes.plugin("c")
    )
    with pytest.raises(DelegateError) as e:
        chain.add(net, fakes.invocation(), {})
    assert e.value.code == 11
    assert e.value.msg == "b ADD failed: b ADD failed"
    assert fakes.order() == [("a", "ADD"), ("b", "ADD")]


def test_add_without_a_result_is_an_error(fakes: Fakes) -> None:
    net = conflist("1.0.0", fakes.plugin("a"), fakes.plugin("quiet", silent=True))
    with pytest.raises(CNIError) as e:
        chain.add(net, fakes.invocation(), {})
    assert e.value.code == 100
    assert e.value.msg == "quiet ADD printed no result"


def test_add_with_a_missing_plugin(fakes: Fakes) -> None:
    net = conflist("1.0.0", fakes.plugin("a"), "ghost")
    with pytest.raises(PluginNotFound):
        chain.add(net, fakes.invocation(), {})
    assert fakes.order() == [("a", "ADD")]


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("prev", [None, {"cniVersion": "1.0.0", "interfaces": [{"name": "x"}]}])
def test_delete_runs_in_reverse(fakes: Fakes, version: str, prev: dict[str, Any] | None) -> None:
    net = conflist(version, fakes.plugin("a"), fakes.plugin("b"), fakes.plugin("c"))
    chain.delete(net, fakes.invocation(), PORTS, prev)
    calls = fakes.calls()
    assert [c.plugin for c in calls] == ["c", "b", "a"]
    # Like libcni: DEL gets the cached result as prevResult only from 0.4.0 on.
    expected = prev if at_least(version, "0.4.0") else None
    for c in calls:
        assert c.env == expected_env(fakes, "DEL")
        assert c.conf.get("prevResult") == expected
        assert ("prevResult" in c.conf) is (expected is not None)
    assert calls[0].conf["runtimeConfig"] == {"portMappings": PORTS["portMappings"]}


def test_delete_continues_after_failures_and_raises_the_first(fakes: Fakes) -> None:
    net = conflist(
        "1.0.0",
        fakes.plugin("a", fail={"DEL": 43}),
        fakes.plugin("b"),
        fakes.plugin("c", fail={"DEL": 42}),
    )
    with pytest.raises(DelegateError) as e:
        chain.delete(net, fakes.invocation(), {}, None)
    assert e.value.code == 42  # c runs first on DEL
    assert e.value.msg == "c DEL failed: c DEL failed"
    assert fakes.order() == [("c", "DEL"), ("b", "DEL"), ("a", "DEL")]


def test_delete_skips_missing_plugins(fakes: Fakes) -> None:
    net = conflist("1.0.0", fakes.plugin("a"), "ghost", fakes.plugin("c"))
    chain.delete(net, fakes.invocation(), {}, None)
    assert fakes.order() == [("c", "DEL"), ("a", "DEL")]


@pytest.mark.parametrize("version", SUPPORTED)
def test_check_runs_forward_from_0_4_0(fakes: Fakes, version: str) -> None:
    net = conflist(version, fakes.plugin("a"), fakes.plugin("b"))
    prev = {"cniVersion": version, "interfaces": [{"name": "a"}, {"name": "b"}]}
    chain.check(net, fakes.invocation(), PORTS, prev)
    if not at_least(version, "0.4.0"):
        assert fakes.calls() == []
        return
    calls = fakes.calls()
    assert [c.plugin for c in calls] == ["a", "b"]
    for c in calls:
        assert c.env == expected_env(fakes, "CHECK")
        assert c.conf["prevResult"] == prev


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("disabled", [True, "true"])
def test_check_skipped_when_disabled(fakes: Fakes, version: str, disabled: Any) -> None:
    net = conflist(version, fakes.plugin("a"), disableCheck=disabled)
    chain.check(net, fakes.invocation(), {}, {"cniVersion": version})
    assert fakes.calls() == []


def test_check_failure_stops_the_chain(fakes: Fakes) -> None:
    net = conflist("1.0.0", fakes.plugin("a", fail={"CHECK": 3}), fakes.plugin("b"))
    with pytest.raises(DelegateError) as e:
        chain.check(net, fakes.invocation(), {}, {"cniVersion": "1.0.0"})
    assert e.value.code == 3
    assert fakes.order() == [("a", "CHECK")]


VALID = [{"containerID": "ctr-1", "ifname": "net1"}, {"containerID": "ctr-2", "ifname": "eth0"}]


@pytest.mark.parametrize("version", SUPPORTED)
def test_gc_only_from_1_1_0(fakes: Fakes, version: str) -> None:
    net = conflist(version, fakes.plugin("a"), fakes.plugin("b"))
    chain.gc(net, fakes.invocation(), VALID)
    if not at_least(version, "1.1.0"):
        assert fakes.calls() == []
        return
    calls = fakes.calls()
    assert [c.plugin for c in calls] == ["a", "b"]
    for c in calls:
        assert c.env == expected_env(fakes, "GC")
        assert c.conf[GC_KEY] == VALID
        assert c.conf["name"] == "blue"
        assert c.conf["cniVersion"] == "1.1.0"
        assert "prevResult" not in c.conf
        assert "runtimeConfig" not in c.conf


def test_gc_skipped_when_disabled(fakes: Fakes) -> None:
    net = conflist("1.1.0", fakes.plugin("a"), disableGC=True)
    chain.gc(net, fakes.invocation(), VALID)
    assert fakes.calls() == []


def test_gc_failure_is_raised(fakes: Fakes) -> None:
    net = conflist("1.1.0", fakes.plugin("a", fail={"GC": 5}))
    with pytest.raises(DelegateError) as e:
        chain.gc(net, fakes.invocation(), [])
    assert e.value.code == 5
    assert fakes.calls()[0].conf[GC_KEY] == []


@pytest.mark.parametrize("version", SUPPORTED)
def test_status(fakes: Fakes, version: str) -> None:
    net = conflist(version, fakes.plugin("a"), fakes.shell_plugin("sh-b"))
    chain.status(net, fakes.invocation())
    if not at_least(version, "1.1.0"):
        assert fakes.calls() == []  # older plugins are only looked up
        return
    calls = fakes.calls()
    assert [(c.plugin, c.command) for c in calls] == [
        ("a", "STATUS"),
        ("sh-b", "STATUS"),
    ]
    assert calls[0].env == expected_env(fakes, "STATUS")
    assert calls[1].conf == {
        "type": "sh-b",
        "capabilities": {"portMappings": True},
        "name": "blue",
        "cniVersion": "1.1.0",
    }


@pytest.mark.parametrize("version", SUPPORTED)
def test_status_with_a_missing_plugin(fakes: Fakes, version: str) -> None:
    net = conflist(version, fakes.plugin("a"), "ghost")
    with pytest.raises(PluginNotFound):
        chain.status(net, fakes.invocation())


def test_status_not_available_keeps_the_plugin_code(fakes: Fakes) -> None:
    net = conflist("1.1.0", fakes.plugin("a", fail={"STATUS": 50}))
    with pytest.raises(DelegateError) as e:
        chain.status(net, fakes.invocation())
    assert e.value.code == 50


def test_deeply_nested_delegate_config_is_an_invalid_config() -> None:
    deep: Any = {"type": "bridge"}
    for _ in range(100000):  # as a caller could build it: deepcopy would hit the recursion limit
        deep = {"x": deep}
    with pytest.raises(InvalidConfig) as e:
        load(
            {"cniVersion": "1.0.0", "name": "n", "type": "bridge", "x": deep}, where="delegates[0]"
        )
    assert e.value.code == 7
    assert e.value.msg == "delegates[0] is nested deeper than 64 levels"


def test_delegate_config_nested_64_levels_is_accepted() -> None:
    deep: Any = 1
    for _ in range(63):
        deep = [deep]
    net = load({"cniVersion": "1.0.0", "name": "n", "type": "bridge", "x": deep})
    assert net.plugins[0]["x"] == deep
