"""The daemon's configuration file and how its keys overlay a request's netconf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multinet.cni.errors import InvalidConfig
from multinet.daemon import config
from multinet.daemon.service import overlay


def test_defaults_and_node_name_from_the_environment() -> None:
    conf = config.load({}, {"NODE_NAME": "node-7"})
    assert conf.socket_path == "/run/multinet/multinet.sock"
    assert conf.node_name == "node-7"
    assert conf.cni_config_dir == "/etc/cni/net.d"
    assert conf.metrics_address is None
    assert conf.generate_config and not conf.cleanup_config_on_exit
    assert conf.overrides == {}
    assert conf.cni_dir == "/var/lib/cni/multinet"


def test_thin_keys_become_overrides_daemon_keys_do_not() -> None:
    conf = config.load(
        {
            "cniVersion": "1.0.0",
            "name": "n",
            "nodeName": "explicit",
            "metricsAddress": "[::1]:9091",
            "multusMasterCNI": "10-calico.conflist",
            "kubeconfig": "/k",
            "cniDir": "/state",
            "logLevel": "debug",
        },
        {"NODE_NAME": "ignored"},
    )
    assert conf.node_name == "explicit"
    assert conf.metrics_address == ("::1", 9091)
    assert conf.primary_config == "10-calico.conflist"
    assert conf.overrides == {"kubeconfig": "/k", "cniDir": "/state", "logLevel": "debug"}
    assert conf.cni_dir == "/state" and conf.log_level == "debug"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"metricsAddress": "9091"}, "metricsAddress: '9091' is not HOST:PORT"),
        ({"metricsAddress": "host:99999"}, "is not HOST:PORT"),
        ({"cleanupConfigOnExit": "yes"}, 'cleanupConfigOnExit: expected boolean, got "yes"'),
        ({"daemonSocketPath": ""}, "daemonSocketPath: must not be empty"),
        ({"logLevel": 7}, "logLevel: expected string, got 7"),
        ({"delegates": {}}, "delegates: expected array"),
        ({"dynamicNetworks": "on"}, 'dynamicNetworks: expected boolean, got "on"'),
        ({"dynamicNetworksInterval": 0}, "dynamicNetworksInterval"),
    ],
)
def test_invalid_configuration_names_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        config.load(raw, {})
    assert message in str(e.value)


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="cannot read"):
        config.load_file(str(tmp_path / "missing.json"), {})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InvalidConfig, match="not valid JSON"):
        config.load_file(str(bad), {})


def test_overlay_gives_the_daemon_keys_precedence() -> None:
    out = json.loads(overlay(b'{"cniDir": "/req", "name": "n"}', {"cniDir": "/daemon"}))
    assert out == {"cniDir": "/daemon", "name": "n"}
    assert overlay(b"{not json", {"cniDir": "/d"}) == b"{not json"
    assert overlay(b"[1]", {"cniDir": "/d"}) == b"[1]"


# -- Multus's daemon-config.json keys ------------------------------------------------------

# The keys of Multus's shipped daemon-config.json that multinet shares.
MULTUS_COMMON = {
    "cniVersion": "0.3.1",
    "logToStderr": True,
    "logLevel": "verbose",
    "cniConfigDir": "/host/etc/cni/net.d",
}


def test_multus_socket_dir_serves_multus_api_and_is_not_forwarded() -> None:
    conf = config.load({"socketDir": "/run/multus/"}, {})
    assert conf.multus_socket_path == "/run/multus/multus.sock"
    assert conf.socket_path == "/run/multinet/multinet.sock"  # multinet's own shim: unchanged
    assert conf.overrides == {}
    assert config.load({}, {}).multus_socket_path == ""  # opt-in


def test_multus_metrics_port_is_metrics_address_on_every_interface() -> None:
    assert config.load({"metricsPort": 9091}, {}).metrics_address == ("", 9091)
    same = config.load({"metricsPort": 9091, "metricsAddress": ":9091"}, {})
    assert same.metrics_address == ("", 9091)
    with pytest.raises(InvalidConfig, match="metricsPort and metricsAddress disagree"):
        config.load({"metricsPort": 9091, "metricsAddress": "127.0.0.1:9091"}, {})
    for bad in (0, 70000, "9091", True):
        with pytest.raises(InvalidConfig, match="metricsPort"):
            config.load({"metricsPort": bad}, {})


@pytest.mark.parametrize("value", ["/hostroot", "/host"])
def test_multus_chroot_dir_is_multinets_host_root(value: str) -> None:
    loaded = config.load({"chrootDir": value}, {})
    assert loaded.overrides == {"hostRoot": value}
    same = config.load({"chrootDir": value, "hostRoot": value}, {})
    assert same.overrides == {"hostRoot": value}


def test_multus_chroot_dir_and_a_different_host_root_are_refused() -> None:
    with pytest.raises(InvalidConfig) as e:
        config.load({"chrootDir": "/hostroot", "hostRoot": "/host"}, {})
    assert str(e.value) == (
        "invalid daemon configuration: chrootDir '/hostroot' and hostRoot '/host' disagree: "
        "keep hostRoot, multinet's name for Multus's chrootDir "
        "(see docs/thick-mode.md#multus-daemon-configjson-keys)"
    )


@pytest.mark.parametrize("value", ["", "/"])
def test_multus_chroot_dir_of_the_host_root_is_accepted(value: str) -> None:
    assert config.load({"chrootDir": value}, {}).overrides == {}


def test_multus_config_file_auto_generates_a_path_is_installed_as_is() -> None:
    auto = config.load({"multusConfigFile": "auto"}, {})
    assert auto.generate_config and auto.user_config_file == ""
    user = config.load({"multusConfigFile": "/etc/multus/00-mine.conf"}, {})
    assert not user.generate_config and user.user_config_file == "/etc/multus/00-mine.conf"
    assert user.overrides == {}
    with pytest.raises(InvalidConfig, match="neither 'auto' nor an absolute path"):
        config.load({"multusConfigFile": "mine.conf"}, {})
    with pytest.raises(InvalidConfig, match="generateConfig is true"):
        config.load({"multusConfigFile": "/m.conf", "generateConfig": True}, {})


def test_multus_autoconfig_dir_is_where_the_primary_is_found() -> None:
    conf = config.load(
        {"cniConfigDir": "/host/etc/cni/net.d", "multusAutoconfigDir": "/host/etc/cni/auto"}, {}
    )
    assert conf.primary_dir == "/host/etc/cni/auto"
    assert conf.cni_config_dir == "/host/etc/cni/net.d"  # where the conflist is written
    assert config.load({"cniConfigDir": "/c"}, {}).primary_dir == "/c"


def test_multus_master_cni_and_override_network_name() -> None:
    conf = config.load({"multusMasterCNI": "10-flannel.conflist", "overrideNetworkName": True}, {})
    assert conf.primary_config == "10-flannel.conflist" and conf.override_network_name
    assert conf.overrides == {}


def test_multus_shared_thin_keys_keep_their_meaning() -> None:
    raw = {
        **MULTUS_COMMON,
        "logFile": "/var/log/multus.log",
        "readinessindicatorfile": "/run/flannel/subnet.env",
        "confDir": "/etc/cni/multus/net.d",
        "cniDir": "/var/lib/cni/multus",
        "binDir": "/opt/cni/bin",
    }
    conf = config.load(raw, {})
    assert conf.cni_version == "0.3.1"
    assert conf.log_level == "verbose" and conf.log_file == "/var/log/multus.log"
    assert conf.readiness_indicator_file == "/run/flannel/subnet.env"
    assert conf.cni_dir == "/var/lib/cni/multus"
    assert conf.overrides == {
        k: v for k, v in raw.items() if k not in ("cniVersion", "cniConfigDir")
    }
    assert conf.notes == ()


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"forceCNIVersion": True}, "multinet never rewrites the primary"),
        ({"perNodeCertificate": {"enabled": True}}, "give multinetd a kubeconfig"),
        ({"logOptions": {"maxAge": 5}}, "does not rotate logFile"),
        ({"daemonSocketDir": "/run/multus"}, "daemonSocketPath"),
        ({"auxiliaryCNIChainName": "x"}, "not supported"),
    ],
)
def test_multus_keys_without_an_equivalent_are_refused(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidConfig, match=message):
        config.load(raw, {})


def test_multus_keys_with_their_off_values_are_accepted_and_not_forwarded() -> None:
    raw = {"forceCNIVersion": False, "perNodeCertificate": {"enabled": False}, "logOptions": {}}
    assert config.load(raw, {}).overrides == {}


def test_multus_daemon_config_as_multus_ships_it() -> None:
    # multus-cni deployments/multus-daemonset-thick.yml, without chrootDir.
    raw = {
        **MULTUS_COMMON,
        "multusAutoconfigDir": "/host/etc/cni/net.d",
        "multusConfigFile": "auto",
        "socketDir": "/host/run/multus/",
    }
    conf = config.load(raw, {})
    assert conf.multus_socket_path == "/host/run/multus/multus.sock"
    assert conf.generate_config and conf.primary_dir == "/host/etc/cni/net.d"
    assert conf.overrides == {"logToStderr": True, "logLevel": "verbose"}


def test_keys_nobody_knows_are_forwarded_with_a_note() -> None:
    conf = config.load({"someDelegateKey": 1}, {})
    assert conf.overrides == {"someDelegateKey": 1}
    assert len(conf.notes) == 1 and "'someDelegateKey'" in conf.notes[0]


def test_confgen_follows_multus_autoconfig_dir_and_override_network_name(tmp_path: Path) -> None:
    from multinet.daemon import confgen

    auto, out = tmp_path / "auto", tmp_path / "net.d"
    auto.mkdir()
    out.mkdir()
    (auto / "10-flannel.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "cbr0", "plugins": [{"type": "flannel"}]})
    )
    conf = config.load(
        {
            "cniConfigDir": str(out),
            "multusAutoconfigDir": str(auto),
            "overrideNetworkName": True,
        },
        {},
    )
    found = confgen.find_primary(conf.primary_dir, conf.primary_config)
    assert found is not None
    written = confgen.render(conf, *found)  # ConfigWriter writes it once the daemon serves
    assert written["name"] == "cbr0"
    assert written["plugins"][0]["clusterNetwork"] == str(auto / "10-flannel.conflist")


def test_multus_config_file_is_installed_in_the_config_dir(tmp_path: Path) -> None:
    from multinet.daemon import confgen

    source = tmp_path / "mine.conflist"
    source.write_text('{"cniVersion": "1.0.0"}')
    out = tmp_path / "net.d"
    out.mkdir()
    conf = config.load({"cniConfigDir": str(out), "multusConfigFile": str(source)}, {})
    assert confgen.install_user_config(conf) == str(out / "mine.conflist")
    assert (out / "mine.conflist").read_text() == '{"cniVersion": "1.0.0"}'


def test_dynamic_networks_is_off_by_default_and_not_forwarded() -> None:
    assert not config.load({}, {}).dynamic_networks
    c = config.load({"dynamicNetworks": True, "dynamicNetworksInterval": 0.5}, {})
    assert c.dynamic_networks and c.dynamic_networks_interval == 0.5
    assert c.overrides == {}


def test_bounded_work_defaults() -> None:
    c = config.load({}, {})
    assert c.max_concurrent_requests == config.default_concurrency() >= 2
    assert c.max_queued_requests == config.DEFAULT_QUEUED
    assert c.queue_timeout == config.DEFAULT_QUEUE_TIMEOUT < 120  # the kubelet's timeout
    c = config.load({"maxConcurrentRequests": 3, "maxQueuedRequests": 0, "queueTimeout": 2.5}, {})
    assert (c.max_concurrent_requests, c.max_queued_requests, c.queue_timeout) == (3, 0, 2.5)
    assert not {"maxConcurrentRequests", "maxQueuedRequests", "queueTimeout"} & set(c.overrides)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"maxConcurrentRequests": 0}, "maxConcurrentRequests: 0 is less than 1"),
        ({"maxConcurrentRequests": 1025}, "maxConcurrentRequests: 1025 is greater than 1024"),
        ({"maxConcurrentRequests": 2.5}, "maxConcurrentRequests"),
        ({"maxConcurrentRequests": True}, "maxConcurrentRequests"),
        ({"maxQueuedRequests": -1}, "maxQueuedRequests: -1 is less than 0"),
        ({"queueTimeout": 0}, "queueTimeout: 0 must be greater than 0"),
        ({"queueTimeout": 120}, "queueTimeout: 120 is greater than 119"),
        ({"connectionLimit": 0}, "connectionLimit: 0 is less than 1"),
        ({"connectionLimit": "8"}, "connectionLimit"),
        ({"maxConcurrentOtherRequests": 0}, "maxConcurrentOtherRequests: 0 is less than 1"),
        ({"memoryBudget": -1}, "memoryBudget: -1 is less than 0"),
        ({"memoryBudget": "100Mi"}, 'memoryBudget: "100Mi" does not match'),
        ({"memoryBudget": True}, "memoryBudget: expected number or string"),
        ({"requestMemoryCost": 0}, "requestMemoryCost: 0 must be greater than 0"),
    ],
)
def test_bounded_work_settings_are_validated(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as e:
        config.load(raw, {})
    assert e.value.code == 7


def test_the_other_lane_and_the_memory_budget() -> None:
    c = config.load({"maxConcurrentRequests": 4}, {})
    assert c.max_concurrent_other_requests == 16  # 4 x the ADD lane's
    assert config.load({"maxConcurrentRequests": 16}, {}).max_concurrent_other_requests == 32
    assert config.load({"connectionLimit": 1}, {}).max_concurrent_other_requests == 4
    c = config.load({"maxConcurrentRequests": 4, "maxConcurrentOtherRequests": 2}, {})
    assert c.max_concurrent_other_requests == 2
    assert (c.memory_budget_mib, c.request_memory_cost_mib) == (None, 2.5)  # "auto"
    assert config.load({"memoryBudget": "auto"}, {}).memory_budget_mib is None
    c = config.load({"memoryBudget": 0, "requestMemoryCost": 2.5}, {})
    assert (c.memory_budget_mib, c.request_memory_cost_mib) == (0, 2.5)
    keys = {"maxConcurrentOtherRequests": 8, "memoryBudget": 90, "requestMemoryCost": 4}
    assert config.load(keys, {}).overrides == {}  # the daemon's: never forwarded


def test_multus_connection_limit_is_max_concurrent_requests() -> None:
    assert config.load({"connectionLimit": 7}, {}).max_concurrent_requests == 7
    same = config.load({"connectionLimit": 7, "maxConcurrentRequests": 7}, {})
    assert same.max_concurrent_requests == 7 and "connectionLimit" not in same.overrides
    with pytest.raises(InvalidConfig, match="maxConcurrentRequests and connectionLimit disagree"):
        config.load({"connectionLimit": 7, "maxConcurrentRequests": 8}, {})


@pytest.mark.parametrize(("cpus", "expected"), [(1, 2), (2, 4), (4, 8), (48, 8)])
def test_the_default_concurrency_is_two_per_cpu_capped_for_the_memory_budget(
    monkeypatch: pytest.MonkeyPatch, cpus: int, expected: int
) -> None:
    """A container without a cpuset sees every CPU of a big node; the DaemonSet's memory
    limit does not grow with them."""
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _: set(range(cpus)))
    assert config.default_concurrency() == expected


def test_gc_is_off_by_default_and_its_keys_are_not_forwarded() -> None:
    c = config.load({}, {})
    assert (c.gc, c.gc_runtime_socket, c.gc_dry_run) == (False, "", False)
    assert (c.gc_interval, c.gc_grace_period, c.gc_quiet_period) == (
        config.DEFAULT_GC_INTERVAL,
        config.DEFAULT_GC_GRACE,
        config.DEFAULT_GC_QUIET,
    )
    raw = {
        "gc": True,
        "gcRuntimeSocket": "/run/k3s/containerd/containerd.sock",
        "gcInterval": 60,
        "gcGracePeriod": 0,
        "gcDryRun": True,
        "gcQuietPeriod": 0,
        "hostRoot": "/hostroot",
    }
    c = config.load(raw, {})
    assert c.gc_quiet_period == 0.0
    assert (c.gc, c.gc_runtime_socket, c.gc_interval, c.gc_grace_period, c.gc_dry_run) == (
        True,
        "/run/k3s/containerd/containerd.sock",
        60.0,
        0.0,
        True,
    )
    assert c.host_root == "/hostroot"
    assert c.overrides == {"hostRoot": "/hostroot"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"gc": "yes"}, "gc"),
        ({"gcInterval": 0.5}, "gcInterval: 0.5 is less than 1"),
        ({"gcInterval": 86401}, "gcInterval: 86401 is greater than 86400"),
        ({"gcGracePeriod": -1}, "gcGracePeriod: -1 is less than 0"),
        ({"gcRuntimeSocket": 5}, "gcRuntimeSocket"),
        ({"gcDryRun": 1}, "gcDryRun"),
        ({"gcQuietPeriod": -1}, "gcQuietPeriod: -1 is less than 0"),
        ({"gcQuietPeriod": 3601}, "gcQuietPeriod: 3601 is greater than 3600"),
    ],
)
def test_gc_settings_are_validated(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message) as e:
        config.load(raw, {})
    assert e.value.code == 7
