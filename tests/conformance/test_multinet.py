"""multinet through the real libcni (the cnitool driver), with Debian's reference plugins.

For multinet at cniVersion 0.3.1, 0.4.0 and 1.0.0 (its delegates at the same
version): ADD creates eth0 + net1 + net2 with the configured addresses and prints
the cluster network's result in the requested version; CHECK passes (libcni
refuses it below 0.4.0); DEL and a second DEL succeed and leave nothing behind
(links, host-local reservations, multinet's journal, libcni's cached result).
Also: multinet inside a conflist followed by ``tuning`` (prevResult chaining
through multinet), CAP_ARGS reaching a cluster delegate that declares the
capability, CNI_ARGS reaching every delegate, and the example configuration of
docs/cnitool.md (``examples/cnitool/10-multinet.conflist``) driven through
cnitool with libcni's default cache directory /var/lib/cni.

multinet at 1.1.0 cannot go through libcni 1.1.2 (it knows versions up to
1.0.0): test_v110.py drives that directly.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.libcni import (
    CnitoolUnavailable,
    StateDirs,
    addresses,
    bridge_conflist,
    build_real_cnitool,
    container_id,
    ip_json,
)
from tests.conformance.rig import Lab, Rig
from tests.support.recorder import Recorder

VERSIONS = ["0.3.1", "0.4.0", "1.0.0"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cnitool" / "10-multinet.conflist"
LIBCNI_CACHE = Path("/var/lib/cni")
CNI_ARGS = "IgnoreUnknown=1;K8S_POD_NAME=x"
root = pytest.mark.root


# -- configurations --------------------------------------------------------------


def cluster_delegate(
    version: str,
    bridge: str,
    subnet: ipaddress.IPv4Network,
    ipam_dir: Path,
    *extra: dict[str, Any],
) -> dict[str, Any]:
    """The cluster network: bridge + host-local, then ``extra`` chained plugins."""
    return bridge_conflist(version, "cluster", bridge, subnet, ipam_dir, *extra)


def macvlan_delegate(
    version: str, name: str, master: str, mode: str, subnet: ipaddress.IPv4Network
) -> dict[str, Any]:
    """A secondary network: macvlan on ``master`` with the static address ``subnet``.5."""
    return {
        "cniVersion": version,
        "name": name,
        "type": "macvlan",
        "master": master,
        "mode": mode,
        "ipam": {
            "type": "static",
            "addresses": [{"address": f"{subnet[5]}/24", "gateway": str(subnet[1])}],
        },
    }


def three_delegates(version: str, lab: Lab) -> list[dict[str, Any]]:
    return [
        cluster_delegate(version, lab.bridge, lab.subnets[0], lab.dirs.ipam),
        macvlan_delegate(version, "sec", lab.bridge, "bridge", lab.subnets[1]),
        macvlan_delegate(version, "third", lab.bridge, "private", lab.subnets[2]),
    ]


def multinet_plugin(lab: Lab, delegates: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "multinet",
        "cniDir": str(lab.dirs.state),
        "binDir": str(lab.cni_bin_dir),
        "delegates": delegates,
        **extra,
    }


# -- observations ----------------------------------------------------------------


def link_names(netns: str) -> set[str]:
    return {link["ifname"] for link in ip_json(netns, "link", "show")}


def link(netns: str, ifname: str) -> dict[str, Any]:
    (found,) = ip_json(netns, "-d", "link", "show", "dev", ifname)
    assert isinstance(found, dict)
    return found


def default_route(netns: str) -> dict[str, Any]:
    (route,) = ip_json(netns, "-4", "route", "show", "default")
    assert isinstance(route, dict)
    return route


def bridge_ports(bridge: str) -> list[str]:
    proc = subprocess.run(
        ["ip", "-j", "link", "show", "master", bridge], capture_output=True, text=True, check=True
    )
    return [p["ifname"] for p in json.loads(proc.stdout or "[]")]


def allocated_ips(ipam_dir: Path) -> list[str]:
    """host-local reservations: one file per IP, named after it."""
    found = []
    for path in ipam_dir.rglob("*"):
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(path.name)
            found.append(path.name)
    return found


def journal_files(dirs: StateDirs) -> list[str]:
    return sorted(p.name for p in dirs.journal.iterdir()) if dirs.journal.is_dir() else []


def assert_nothing_left(lab: Lab, cached: Path) -> None:
    assert link_names(lab.netns) == {"lo"}
    assert bridge_ports(lab.bridge) == []
    assert allocated_ips(lab.dirs.ipam) == []
    assert journal_files(lab.dirs) == []
    assert not cached.exists()


def expected_cluster_ips(version: str, subnet: ipaddress.IPv4Network, index: int) -> list[Any]:
    ip: dict[str, Any] = {
        "address": f"{subnet[2]}/24",
        "gateway": str(subnet[1]),
        "interface": index,
    }
    if version != "1.0.0":
        ip["version"] = "4"
    return [ip]


def sandbox_index(result: dict[str, Any], ifname: str, netns: str) -> int:
    (index,) = [
        i
        for i, iface in enumerate(result["interfaces"])
        if iface["name"] == ifname and iface.get("sandbox") == netns
    ]
    return index


@pytest.fixture
def rig(rig: Rig, plugin_dir: Path) -> Rig:
    """The conftest's rig with multinet first on CNI_PATH."""
    return rig.with_path(plugin_dir)


# -- ADD / CHECK / DEL -------------------------------------------------------------


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del(version: str, rig: Rig) -> None:
    bridge = rig.make_bridge()
    net = "mn"
    delegates = three_delegates(version, rig)
    conf = {
        "cniVersion": version,
        "name": net,
        **multinet_plugin(rig, delegates),
    }
    rig.write(conf)
    cached = rig.cached(net)

    add = rig.run("add", net)
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)

    # The printed result is the cluster network's, in the requested version.
    assert result["cniVersion"] == version
    eth0 = sandbox_index(result, "eth0", rig.netns)
    assert result["ips"] == expected_cluster_ips(version, rig.subnets[0], eth0)
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": str(rig.subnets[0][1])}]
    names = {iface["name"] for iface in result["interfaces"]}
    assert bridge in names and "net1" not in names and "net2" not in names
    assert result["interfaces"][eth0]["mac"] == link(rig.netns, "eth0")["address"]
    assert json.loads(cached.read_text())["result"] == result

    # The interfaces really exist, with the configured addresses.
    assert link_names(rig.netns) == {"lo", "eth0", "net1", "net2"}
    assert addresses(rig.netns, "eth0") == {f"{rig.subnets[0][2]}/24"}
    assert addresses(rig.netns, "net1") == {f"{rig.subnets[1][5]}/24"}
    assert addresses(rig.netns, "net2") == {f"{rig.subnets[2][5]}/24"}
    for ifname, mode in (("net1", "bridge"), ("net2", "private")):
        info = link(rig.netns, ifname)["linkinfo"]
        assert (info["info_kind"], info["info_data"]["mode"]) == ("macvlan", mode)
    route = default_route(rig.netns)
    assert (route["gateway"], route["dev"]) == (str(rig.subnets[0][1]), "eth0")
    assert len(bridge_ports(bridge)) == 1
    assert allocated_ips(rig.dirs.ipam) == [str(rig.subnets[0][2])]
    assert f"{container_id(rig.netns)}@eth0.json" in journal_files(rig.dirs)

    check = rig.run("check", net)
    if version == "0.3.1":  # libcni refuses CHECK below 0.4.0
        assert check.returncode == 1
        assert "does not support the CHECK command" in check.stderr
    else:
        assert check.returncode == 0, check.stderr

    delete = rig.run("del", net)
    assert delete.returncode == 0, delete.stderr
    assert_nothing_left(rig, cached)

    again = rig.run("del", net)
    assert again.returncode == 0, again.stderr
    assert_nothing_left(rig, cached)


@root
def test_check_fails_on_missing_secondary_and_del_still_cleans(rig: Rig) -> None:
    rig.make_bridge()
    net = "mn"
    delegates = three_delegates("1.0.0", rig)
    rig.write(
        {
            "cniVersion": "1.0.0",
            "name": net,
            **multinet_plugin(rig, delegates),
        },
    )
    add = rig.run("add", net)
    assert add.returncode == 0, add.stderr

    subprocess.run(["ip", "-n", Path(rig.netns).name, "link", "del", "net1"], check=True)
    check = rig.run("check", net)
    assert check.returncode == 1
    assert "'sec' (net1)" in check.stderr

    delete = rig.run("del", net)
    assert delete.returncode == 0, delete.stderr
    assert_nothing_left(rig, rig.cached(net))


@root
def test_add_rolls_back_when_a_secondary_fails(rig: Rig) -> None:
    rig.make_bridge()
    net = "mn"
    delegates = three_delegates("1.0.0", rig)
    delegates[2]["master"] = "mntnolink0"
    rig.write(
        {
            "cniVersion": "1.0.0",
            "name": net,
            **multinet_plugin(rig, delegates),
        },
    )

    add = rig.run("add", net)
    assert add.returncode == 1
    assert "'third' (net2)" in add.stderr
    assert "macvlan ADD failed" in add.stderr
    cached = rig.cached(net)
    assert_nothing_left(rig, cached)
    # The runtime calls DEL after a failed ADD: it succeeds.
    delete = rig.run("del", net)
    assert delete.returncode == 0, delete.stderr
    assert_nothing_left(rig, cached)


# -- multinet inside a conflist ----------------------------------------------------


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_conflist_multinet_then_tuning(version: str, rig: Rig) -> None:
    """tuning needs a prevResult: multinet's (the cluster network's) result."""
    rig.make_bridge()
    net = "mn-chain"
    mac = "02:6d:6e:74:01:01"
    tuning = {
        "type": "tuning",
        "mac": mac,
        "mtu": 1400,
        "promisc": True,
        "dataDir": str(rig.dirs.tuning),
    }
    delegates = three_delegates(version, rig)
    conf = {
        "cniVersion": version,
        "name": net,
        "plugins": [multinet_plugin(rig, delegates), tuning],
    }
    rig.write(conf)
    cached = rig.cached(net)

    add = rig.run("add", net)
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)
    assert result["cniVersion"] == version
    eth0 = sandbox_index(result, "eth0", rig.netns)
    assert result["interfaces"][eth0]["mac"] == mac  # tuning updated multinet's result
    assert result["ips"] == expected_cluster_ips(version, rig.subnets[0], eth0)

    eth0_link = link(rig.netns, "eth0")
    assert (eth0_link["address"], eth0_link["mtu"]) == (mac, 1400)
    assert "PROMISC" in eth0_link["flags"]
    assert link(rig.netns, "net1")["mtu"] != 1400  # tuning acts on CNI_IFNAME only
    assert addresses(rig.netns, "net2") == {f"{rig.subnets[2][5]}/24"}

    if version != "0.3.1":
        check = rig.run("check", net)
        assert check.returncode == 0, check.stderr
    for _ in range(2):
        delete = rig.run("del", net)
        assert delete.returncode == 0, delete.stderr
        assert_nothing_left(rig, cached)


# -- CAP_ARGS and CNI_ARGS ---------------------------------------------------------


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_cap_args_mac_reaches_cluster_delegate(version: str, rig: Rig) -> None:
    bridge = rig.make_bridge()
    net = "mn-mac"
    mac = "02:6d:6e:74:00:2a"
    tuning = {"type": "tuning", "capabilities": {"mac": True}, "dataDir": str(rig.dirs.tuning)}
    delegates = [
        cluster_delegate(version, bridge, rig.subnets[0], rig.dirs.ipam, tuning),
        macvlan_delegate(version, "sec", bridge, "bridge", rig.subnets[1]),
    ]
    plugin = multinet_plugin(rig, delegates, capabilities={"mac": True})
    rig.write({"cniVersion": version, "name": net, **plugin})
    kw: dict[str, Any] = dict(cap_args={"mac": mac})

    add = rig.run("add", net, **kw)
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)
    assert link(rig.netns, "eth0")["address"] == mac
    assert result["interfaces"][sandbox_index(result, "eth0", rig.netns)]["mac"] == mac
    assert link(rig.netns, "net1")["address"] != mac  # only the cluster network gets it

    if version != "0.3.1":
        check = rig.run("check", net, **kw)
        assert check.returncode == 0, check.stderr
    for _ in range(2):
        delete = rig.run("del", net, **kw)
        assert delete.returncode == 0, delete.stderr
    cached = rig.cached(net)
    assert_nothing_left(rig, cached)


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_cni_args_and_environment_reach_every_delegate(version: str, rig: Rig) -> None:
    bridge = rig.make_bridge()
    recorder = Recorder(rig.tmp_path / "recorder-bin", rig.tmp_path / "recorder.log")

    net = "mn-args"
    record = {"type": recorder.plugin("recorder"), "capabilities": {"mac": True}}
    secondary = macvlan_delegate(version, "sec", bridge, "bridge", rig.subnets[1])
    secondary_list = {
        "cniVersion": version,
        "name": "sec",
        "plugins": [
            {k: v for k, v in secondary.items() if k not in ("cniVersion", "name")},
            record,
        ],
    }
    delegates = [
        cluster_delegate(version, bridge, rig.subnets[0], rig.dirs.ipam, record),
        secondary_list,
    ]
    plugin = multinet_plugin(rig, delegates, capabilities={"mac": True})
    rig.write({"cniVersion": version, "name": net, **plugin})
    multinet_dir, *_ = rig.cni_path
    cni_path = [multinet_dir, recorder.bin_dir, rig.cni_bin_dir]
    kw: dict[str, Any] = dict(
        cni_path=cni_path,
        cni_args=CNI_ARGS,
        cap_args={"mac": "02:6d:6e:74:00:99"},
    )

    add = rig.run("add", net, **kw)
    assert add.returncode == 0, add.stderr
    if version != "0.3.1":
        check = rig.run("check", net, **kw)
        assert check.returncode == 0, check.stderr
    delete = rig.run("del", net, **kw)
    assert delete.returncode == 0, delete.stderr

    calls = recorder.calls()
    seen = [(c.command, c.ifname) for c in calls]
    checks = [] if version == "0.3.1" else [("CHECK", "eth0"), ("CHECK", "net1")]
    # ADD and CHECK in order; DEL in reverse.
    assert seen == [("ADD", "eth0"), ("ADD", "net1"), *checks, ("DEL", "net1"), ("DEL", "eth0")]
    for call in calls:
        env, conf = call.env, call.conf
        assert env["CNI_ARGS"] == CNI_ARGS
        assert env["CNI_CONTAINERID"] == container_id(rig.netns)
        assert env["CNI_NETNS"] == rig.netns
        # binDir first, then the runtime's CNI_PATH.
        assert env["CNI_PATH"].split(":") == [str(rig.cni_bin_dir), *map(str, cni_path)]
        assert conf["cniVersion"] == version
        cluster = env["CNI_IFNAME"] == "eth0"
        assert conf["name"] == ("cluster" if cluster else "sec")
        # The capability goes to the cluster network only.
        assert conf.get("runtimeConfig") == ({"mac": "02:6d:6e:74:00:99"} if cluster else None)
        # Like libcni, multinet gives DEL no prevResult below 0.4.0.
        if call.command == "DEL" and version in ("0.3.0", "0.3.1"):
            assert "prevResult" not in conf
        else:
            assert conf["prevResult"]["cniVersion"] == version
    cached = rig.cached(net)
    assert_nothing_left(rig, cached)


# -- the example configuration through cnitool ------------------------------------------


@pytest.fixture(scope="session")
def real_cnitool() -> Path:
    try:
        return build_real_cnitool()
    except CnitoolUnavailable as exc:
        pytest.skip(f"cannot build upstream cnitool: {exc}")


@pytest.fixture
def libcni_default_cache() -> Iterator[list[Path]]:
    """Files a test makes in /var/lib/cni (libcni's default cache): removed afterwards.

    The test appends the paths it expects; directories that did not exist
    before are removed too when they end up empty.
    """
    missing = [d for d in (LIBCNI_CACHE, LIBCNI_CACHE / "results") if not d.exists()]
    made: list[Path] = []
    try:
        yield made
    finally:
        for path in made:
            path.unlink(missing_ok=True)
        for d in reversed(missing):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty: other users may have written there since


def example_config(bridge: str, dirs: StateDirs, cni_bin_dir: Path) -> dict[str, Any]:
    """The example with this test's bridge name, directories and binDir substituted."""
    conf: dict[str, Any] = json.loads(EXAMPLE.read_text())
    (plugin,) = conf["plugins"]
    cluster, storage = plugin["delegates"]
    assert plugin["type"] == "multinet"
    assert cluster["plugins"][0]["bridge"] == storage["master"] == "mnexbr0"
    plugin["cniDir"] = str(dirs.state)
    plugin["binDir"] = str(cni_bin_dir)
    cluster["plugins"][0]["bridge"] = bridge
    cluster["plugins"][0]["ipam"]["dataDir"] = str(dirs.ipam)
    storage["master"] = bridge
    return conf


@root
@pytest.mark.host_dirs("libcni's default cache /var/lib/cni, as in docs/cnitool.md")
@pytest.mark.parametrize("tool", ["driver", "cnitool"])
def test_example_config_through_cnitool(
    tool: str, request: pytest.FixtureRequest, rig: Rig, libcni_default_cache: list[Path]
) -> None:
    """docs/cnitool.md's walk-through, with cnitool's default cache /var/lib/cni.

    ``cnitool`` is upstream's cnitool when its sources are installed (skipped
    otherwise); ``driver`` is the libcni driver with the same command line, run
    with CNI_CACHE_DIR at libcni's default, so it behaves as cnitool does.
    """
    exe: Path = request.getfixturevalue("real_cnitool" if tool == "cnitool" else "cnitool")
    conf = example_config(rig.bridge, rig.dirs, rig.cni_bin_dir)
    net = conf["name"]
    (rig.confdir / EXAMPLE.name).write_text(json.dumps(conf, indent=2))
    cached = rig.cached(net, cache_dir=LIBCNI_CACHE)
    libcni_default_cache.append(cached)
    kw: dict[str, Any] = dict(exe=exe, cache_dir=LIBCNI_CACHE)

    add = rig.run("add", net, **kw)
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)
    eth0 = sandbox_index(result, "eth0", rig.netns)
    assert result["cniVersion"] == "1.0.0"
    assert result["ips"] == [
        {"interface": eth0, "address": "10.250.10.2/24", "gateway": "10.250.10.1"}
    ]
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.250.10.1"}]
    assert addresses(rig.netns, "eth0") == {"10.250.10.2/24"}
    assert addresses(rig.netns, "net1") == {"10.250.20.5/24"}
    assert cached.is_file()

    check = rig.run("check", net, **kw)
    assert check.returncode == 0, check.stderr
    for _ in range(2):
        delete = rig.run("del", net, **kw)
        assert delete.returncode == 0, delete.stderr
        assert_nothing_left(rig, cached)


def test_example_config_is_the_documented_one() -> None:
    """The walk-through in docs/cnitool.md shows this file verbatim."""
    doc = (EXAMPLE.parents[2] / "docs" / "cnitool.md").read_text()
    assert EXAMPLE.read_text().strip() in doc
