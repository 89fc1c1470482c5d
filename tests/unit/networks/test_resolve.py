"""Network references -> configs: paths, NADs in multusNamespace, config names in confDir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multinet.cluster.base import NAD
from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import INVALID_CONFIG, InvalidConfig, NetworkNotFound
from multinet.cni.version import SUPPORTED
from multinet.config.netconf import NetConf, load
from multinet.networks.resolve import Resolved, Resolver, config_files
from tests.support.fakecluster import FakeCluster


def netconf(conf_dir: Path, version: str = "1.0.0", **extra: Any) -> NetConf:
    return load(
        {
            "cniVersion": version,
            "name": "multinet",
            "type": "multinet",
            "clusterNetwork": "cluster",
            "confDir": str(conf_dir),
            **extra,
        }
    )


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def bridge(name: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": name, "type": "bridge", **extra}


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    d = tmp_path / "net.d"
    d.mkdir()
    return d


# -- reference: absolute paths ----------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_reference_to_a_file(conf_dir: Path, tmp_path: Path, version: str) -> None:
    path = write(tmp_path / "elsewhere" / "10-cluster.conf", bridge("k8s-pod-network", version))
    cluster = FakeCluster()
    got = Resolver(netconf(conf_dir, version), cluster).reference(str(path))
    assert got == Resolved(
        "k8s-pod-network",
        NetworkConfig(
            "k8s-pod-network", version, (bridge("k8s-pod-network", version),), is_list=False
        ),
    )
    assert cluster.lookups == []  # a path is never looked up as a NAD


def test_reference_to_a_directory_takes_its_first_config_file(tmp_path: Path) -> None:
    d = tmp_path / "cni"
    write(d / "README", "not a config")
    write(d / "20-b.conf", bridge("b"))
    write(d / "10-a.conflist", {"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "ptp"}]})
    write(d / "05-z.yaml", "ignored: true")
    got = Resolver(netconf(tmp_path), None).reference(str(d))
    assert got.name == "a"
    assert got.network.plugins == ({"type": "ptp"},)
    assert got.nad is None
    assert config_files(str(d)) == [str(d / "10-a.conflist"), str(d / "20-b.conf")]


def test_reference_to_a_directory_without_configs(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    write(d / "notes.txt", "x")
    with pytest.raises(NetworkNotFound) as e:
        Resolver(netconf(tmp_path), None).reference(str(d))
    assert e.value.msg == f"no CNI config file in directory {d}"


def test_reference_to_a_missing_path_is_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    with pytest.raises(NetworkNotFound) as e:
        Resolver(netconf(tmp_path), FakeCluster()).reference(str(missing))
    assert e.value.msg == f"network {missing} not found: no such file or directory"
    assert e.value.code == INVALID_CONFIG


def test_reference_to_a_file_with_bad_json_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conf", "{not json")
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(tmp_path), None).reference(str(path))
    assert e.value.msg == f"CNI config {path} is not valid JSON"
    assert not isinstance(e.value, NetworkNotFound)


def test_reference_to_a_file_holding_a_list(tmp_path: Path) -> None:
    path = write(tmp_path / "list.conf", [bridge("a")])
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(tmp_path), None).file(str(path))
    assert e.value.msg == f"CNI config {path} must hold a JSON object"


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "x.conf", {"cniVersion": "1.0.0", "type": "bridge"})
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(tmp_path), None).file(str(path))
    assert e.value.msg == f"{path}: name is missing or not a non-empty string"


# -- reference: NAD, then confDir name --------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_reference_finds_a_nad_in_multus_namespace(conf_dir: Path, version: str) -> None:
    nad = NAD("multinet", "cluster", json.dumps(bridge("k8s-pod-network", version)))
    cluster = FakeCluster(nads=(nad, NAD("kube-system", "cluster", json.dumps(bridge("wrong")))))
    write(conf_dir / "cluster.conf", bridge("cluster"))  # the NAD wins over confDir
    conf = netconf(conf_dir, version, multusNamespace="multinet")
    got = Resolver(conf, cluster).reference("cluster")
    assert got.name == "multinet/cluster"
    assert got.nad == nad
    assert got.network.name == "k8s-pod-network"
    assert got.network.cni_version == version
    assert cluster.lookups == [("nad", "multinet", "cluster")]


def test_reference_falls_back_to_a_config_name_in_conf_dir(conf_dir: Path) -> None:
    write(conf_dir / "00-other.conf", bridge("other"))
    write(
        conf_dir / "10-flannel.conflist",
        {"cniVersion": "0.3.1", "name": "cbr0", "plugins": [{"type": "flannel"}]},
    )
    cluster = FakeCluster(nads=(NAD("default", "cbr0", json.dumps(bridge("not-this"))),))
    got = Resolver(netconf(conf_dir), cluster).reference("cbr0")
    assert got == Resolved(
        "cbr0", NetworkConfig("cbr0", "0.3.1", ({"type": "flannel"},), is_list=True)
    )
    assert cluster.lookups == [("nad", "kube-system", "cbr0")]


def test_reference_without_cluster_uses_conf_dir_only(conf_dir: Path) -> None:
    write(conf_dir / "a.json", bridge("a"))
    got = Resolver(netconf(conf_dir), None).reference("a")
    assert (got.name, got.network.type, got.nad) == ("a", "bridge", None)


def test_reference_not_found_names_every_place_it_looked(conf_dir: Path) -> None:
    write(conf_dir / "a.conf", bridge("a"))
    conf = netconf(conf_dir, multusNamespace="multinet")
    with pytest.raises(NetworkNotFound) as e:
        Resolver(conf, FakeCluster()).reference("missing")
    assert e.value.code == INVALID_CONFIG
    assert e.value.msg == (
        "network 'missing' not found: no NetworkAttachmentDefinition multinet/missing and "
        f"no config named 'missing' in {conf_dir}"
    )


def test_reference_matches_the_config_name_not_the_file_name(conf_dir: Path) -> None:
    write(conf_dir / "a.conf", bridge("b"))
    with pytest.raises(NetworkNotFound):
        Resolver(netconf(conf_dir), None).reference("a")
    assert Resolver(netconf(conf_dir), None).reference("b").name == "b"


# -- by_config_name ---------------------------------------------------------------------------


def test_by_config_name_skips_unreadable_files(conf_dir: Path) -> None:
    write(conf_dir / "00-broken.conf", "{")
    write(conf_dir / "01-list.conf", "[]")
    write(conf_dir / "02-dir.conf" / "x", "x")  # a directory named like a config
    write(conf_dir / "03-wanted.conf", bridge("wanted", mtu=1400))
    write(conf_dir / "04-wanted.conf", bridge("wanted", mtu=9000))  # the first one wins
    found = Resolver(netconf(conf_dir), None).by_config_name("wanted")
    assert found is not None
    assert found.plugins == (bridge("wanted", mtu=1400),)
    assert Resolver(netconf(conf_dir), None).by_config_name("nothing") is None


def test_by_config_name_with_a_missing_conf_dir(tmp_path: Path) -> None:
    assert Resolver(netconf(tmp_path / "absent"), None).by_config_name("a") is None


def test_by_config_name_reports_an_invalid_matching_config(conf_dir: Path) -> None:
    path = write(conf_dir / "a.conf", {"name": "a", "type": "../evil"})
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(conf_dir), None).by_config_name("a")
    assert e.value.msg.startswith(f"{path}: config: ")


# -- nad / nad_config -------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_nad_with_inline_config(conf_dir: Path, version: str) -> None:
    config = bridge("blue-net", version, bridge="br-blue")
    nad = NAD("pods", "blue", json.dumps(config))
    got = Resolver(netconf(conf_dir), FakeCluster(nads=(nad,))).nad("pods", "blue")
    assert got == Resolved(
        "pods/blue", NetworkConfig("blue-net", version, (config,), is_list=False), nad
    )


@pytest.mark.parametrize("version", SUPPORTED)
def test_nad_config_takes_the_nad_name_when_the_config_has_none(
    conf_dir: Path, version: str
) -> None:
    raw = {"cniVersion": version, "plugins": [{"type": "macvlan"}, {"type": "tuning"}]}
    net = Resolver(netconf(conf_dir), None).nad_config(NAD("pods", "mv", json.dumps(raw)))
    assert net == NetworkConfig("mv", version, ({"type": "macvlan"}, {"type": "tuning"}))


def test_nad_config_without_cni_version_takes_multinets(conf_dir: Path) -> None:
    nad = NAD("pods", "mv", '{"type": "macvlan", "master": "eth0"}')
    net = Resolver(netconf(conf_dir, "0.4.0"), None).nad_config(nad)
    assert (net.name, net.cni_version) == ("mv", "0.4.0")
    assert net.to_dict()["plugins"] == [{"type": "macvlan", "master": "eth0"}]


@pytest.mark.parametrize("spec", ["", "  \n"])
def test_nad_with_empty_spec_uses_the_conf_dir_file_of_its_name(conf_dir: Path, spec: str) -> None:
    write(conf_dir / "50-sriov.conf", bridge("sriov-net", "0.3.1"))
    write(conf_dir / "40-other.conf", bridge("other"))
    net = Resolver(netconf(conf_dir), None).nad_config(NAD("pods", "sriov-net", spec))
    assert net == NetworkConfig(
        "sriov-net", "0.3.1", (bridge("sriov-net", "0.3.1"),), is_list=False
    )


def test_nad_with_empty_spec_and_no_file(conf_dir: Path) -> None:
    nad = NAD("pods", "ghost")
    cluster = FakeCluster(nads=(nad,))
    with pytest.raises(NetworkNotFound) as e:
        Resolver(netconf(conf_dir), cluster).nad("pods", "ghost")
    assert e.value.msg == (
        f"NetworkAttachmentDefinition pods/ghost has an empty spec and {conf_dir} has no "
        "config named 'ghost'"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "NetworkAttachmentDefinition pods/bad spec.config is not valid JSON"),
        ('["a"]', "NetworkAttachmentDefinition pods/bad spec.config must be a JSON object"),
        (
            '{"cniVersion": "1.0.0", "plugins": []}',
            "NetworkAttachmentDefinition pods/bad spec.config: plugins must be a non-empty list",
        ),
        (
            '{"cniVersion": "1.0.0", "name": "x"}',
            "NetworkAttachmentDefinition pods/bad spec.config: config has no 'type'",
        ),
        (
            '{"cniVersion": "one", "type": "bridge"}',
            "NetworkAttachmentDefinition pods/bad spec.config: cniVersion: "
            "invalid cniVersion 'one': expected MAJOR.MINOR.PATCH",
        ),
    ],
)
def test_nad_config_errors_name_the_nad(conf_dir: Path, config: str, message: str) -> None:
    cluster = FakeCluster(nads=(NAD("pods", "bad", config),))
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(conf_dir), cluster).nad("pods", "bad")
    assert e.value.msg == message
    assert e.value.code == INVALID_CONFIG
    assert not isinstance(e.value, NetworkNotFound)


def test_nad_config_rejects_a_plugin_type_that_is_a_path(conf_dir: Path) -> None:
    nad = NAD("pods", "evil", json.dumps(bridge("evil", type="/bin/sh")))
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(conf_dir), None).nad_config(nad)
    assert e.value.msg.startswith("NetworkAttachmentDefinition pods/evil spec.config: config: ")


def test_nad_not_found(conf_dir: Path) -> None:
    cluster = FakeCluster(nads=(NAD("other", "blue", json.dumps(bridge("blue"))),))
    with pytest.raises(NetworkNotFound) as e:
        Resolver(netconf(conf_dir), cluster).nad("pods", "blue")
    assert e.value.msg == "NetworkAttachmentDefinition pods/blue not found"


def test_nad_without_a_cluster_source(conf_dir: Path) -> None:
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(conf_dir), None).nad("pods", "blue")
    assert not isinstance(e.value, NetworkNotFound)
    assert "pods/blue" in e.value.msg
    assert "no cluster source is configured" in e.value.msg


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("[" * 100000, "nested deeper than 64 levels"),
        (
            '{"cniVersion": "1.0.0", "type": "bridge", "x": ' + "[" * 70 + "]" * 70 + "}",
            "nested deeper than 64 levels",
        ),
        ('{"cniVersion": "1.0.0", "type": "bridge", "mtu": NaN}', "NaN is not JSON"),
        ('{"cniVersion": "1.0.0", "type": "bridge", "mtu": -Infinity}', "-Infinity is not JSON"),
        ('\ufeff{"cniVersion": "1.0.0", "type": "bridge"}', "byte order mark"),
    ],
)
def test_deeply_nested_or_non_standard_nad_config_is_an_invalid_config(
    conf_dir: Path, config: str, problem: str
) -> None:
    cluster = FakeCluster(nads=(NAD("pods", "bad", config),))
    with pytest.raises(InvalidConfig) as e:
        Resolver(netconf(conf_dir), cluster).nad("pods", "bad")
    assert e.value.code == INVALID_CONFIG
    assert e.value.msg == "NetworkAttachmentDefinition pods/bad spec.config is not valid JSON"
    assert problem in e.value.details
