"""The cnitool driver against Debian's reference plugins alone (no multinet).

Proves what the multinet conformance tests rely on: the driver loads networks
like cnitool, libcni caches the ADD result in CNI_CACHE_DIR and hands it to
CHECK and DEL as prevResult, CAP_ARGS reaches plugins that declare the
capability, and DEL is idempotent.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.libcni import (
    addresses,
    bridge_conflist,
    container_id,
    ip_json,
    run_cnitool,
    write_netconf,
)
from tests.conformance.rig import Rig
from tests.support.recorder import Recorder

VERSIONS = ["0.3.1", "0.4.0", "1.0.0"]
root = pytest.mark.root


def link_names(netns: str) -> set[str]:
    return {link["ifname"] for link in ip_json(netns, "link", "show")}


def allocated_ips(ipam_dir: Path) -> list[str]:
    """host-local reservations: one file per IP, named after it."""
    found = []
    for path in ipam_dir.rglob("*"):
        try:
            ipaddress.ip_address(path.name)
        except ValueError:
            continue
        found.append(path.name)
    return found


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_bridge_add_check_del(version: str, rig: Rig) -> None:
    net = "mnt-bridge"
    rig.write(bridge_conflist(version, net, rig.bridge, rig.subnet, rig.dirs.ipam))

    add = rig.run("add", net)
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)
    assert result["cniVersion"] == version
    expected = f"{rig.subnet[2]}/{rig.subnet.prefixlen}"
    assert [ip["address"] for ip in result["ips"]] == [expected]
    assert addresses(rig.netns, "eth0") == {expected}
    cached = rig.cached(net)
    assert cached.is_file()

    check = rig.run("check", net)
    if version == "0.3.1":  # libcni refuses CHECK below 0.4.0
        assert check.returncode == 1
        assert "does not support the CHECK command" in check.stderr
    else:
        assert check.returncode == 0, check.stderr

    delete = rig.run("del", net)
    assert delete.returncode == 0, delete.stderr
    assert "eth0" not in link_names(rig.netns)
    assert not cached.exists()
    assert allocated_ips(rig.dirs.ipam) == []

    again = rig.run("del", net)
    assert again.returncode == 0, again.stderr


@root
def test_shared_bridge_check_and_missing_interface(rig: Rig) -> None:
    net = "mnt-bridge"
    rig.write(bridge_conflist("1.0.0", net, rig.make_bridge(), rig.subnet, rig.dirs.ipam))
    first, second = rig.new_netns(), rig.new_netns()

    for ns, host in ((first, 2), (second, 3)):
        add = rig.run("add", net, ns)
        assert add.returncode == 0, add.stderr
        assert addresses(ns, "eth0") == {f"{rig.subnet[host]}/{rig.subnet.prefixlen}"}
    for ns in (first, second):
        check = rig.run("check", net, ns)
        assert check.returncode == 0, check.stderr

    subprocess.run(["ip", "-n", Path(first).name, "link", "del", "eth0"], check=True)
    check = rig.run("check", net, first)
    assert check.returncode == 1
    assert "eth0" in check.stderr
    for ns in (first, second):
        delete = rig.run("del", net, ns)
        assert delete.returncode == 0, delete.stderr
    assert allocated_ips(rig.dirs.ipam) == []


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_cap_args_mac(version: str, rig: Rig) -> None:
    net = "mnt-mac"
    mac = "02:6d:6e:74:00:2a"
    tuning = {"type": "tuning", "capabilities": {"mac": True}, "dataDir": str(rig.dirs.tuning)}
    rig.write(bridge_conflist(version, net, rig.bridge, rig.subnet, rig.dirs.ipam, tuning))
    cap_args = {"mac": mac}

    add = rig.run("add", net, cap_args=cap_args)
    assert add.returncode == 0, add.stderr
    (link,) = ip_json(rig.netns, "link", "show", "dev", "eth0")
    assert link["address"] == mac
    result = json.loads(add.stdout)
    assert mac in [i.get("mac") for i in result["interfaces"] if i.get("sandbox")]

    if version != "0.3.1":
        check = rig.run("check", net, cap_args=cap_args)
        assert check.returncode == 0, check.stderr
    for _ in range(2):
        delete = rig.run("del", net, cap_args=cap_args)
        assert delete.returncode == 0, delete.stderr
    assert "eth0" not in link_names(rig.netns)
    assert allocated_ips(rig.dirs.ipam) == []


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_plugins_get_prev_result_env_and_capabilities(version: str, rig: Rig) -> None:
    recorder = Recorder(rig.tmp_path / "bin", rig.tmp_path / "recorder.log")
    net = "mnt-rec"
    plugin = {
        "type": recorder.plugin("recorder"),
        "capabilities": {"wanted": True, "declined": False},
        "x": 1,
    }
    rig.write(bridge_conflist(version, net, rig.bridge, rig.subnet, rig.dirs.ipam, plugin))
    rig = rig.with_path(recorder.bin_dir)
    kw: dict[str, Any] = dict(
        ifname="net7",
        cni_args={"IgnoreUnknown": "1", "K8S_POD_NAME": "p"},
        cap_args={"wanted": [1], "declined": True, "unknown": "u"},
    )

    add = rig.run("add", net, **kw)
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)
    assert addresses(rig.netns, "net7") == {f"{rig.subnet[2]}/{rig.subnet.prefixlen}"}
    if version != "0.3.1":
        assert rig.run("check", net, **kw).returncode == 0
    assert rig.run("del", net, **kw).returncode == 0

    calls = recorder.calls()
    commands = ["ADD", "DEL"] if version == "0.3.1" else ["ADD", "CHECK", "DEL"]
    assert [c.command for c in calls] == commands
    for call in calls:
        env, conf = call.env, call.conf
        assert env["CNI_CONTAINERID"] == container_id(rig.netns)
        assert env["CNI_NETNS"] == rig.netns
        assert env["CNI_IFNAME"] == "net7"
        assert env["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=p"
        assert env["CNI_PATH"] == f"{recorder.bin_dir}:{rig.cni_bin_dir}"
        assert (conf["cniVersion"], conf["name"], conf["x"]) == (version, net, 1)
        assert conf["runtimeConfig"] == {"wanted": [1]}  # only declared-true capabilities
        # ADD gets the bridge's result; CHECK and DEL get libcni's cached final result,
        # except DEL below 0.4.0, which gets none.
        if call.command == "DEL" and version == "0.3.1":
            assert "prevResult" not in conf
        else:
            assert conf["prevResult"] == result


@root
def test_single_conf_fallback(rig: Rig) -> None:
    rig.write({"cniVersion": "1.0.0", "name": "mnt-lo", "type": "loopback"})

    add = rig.run("add", "mnt-lo")
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["interfaces"][0]["name"] == "lo"
    (lo,) = ip_json(rig.netns, "link", "show", "dev", "lo")
    assert "UP" in lo["flags"]
    assert rig.run("check", "mnt-lo").returncode == 0
    assert rig.run("del", "mnt-lo").returncode == 0


# Command-line and config errors: no root needed, the netns is never opened.


def test_usage(cnitool: Path) -> None:
    for argv in ([], ["add", "n"], ["frobnicate", "n", "/x"]):
        proc = subprocess.run([cnitool, *argv], capture_output=True, text=True, check=False)
        assert proc.returncode == 1
        assert "add   <net> <netns>" in proc.stderr


@pytest.mark.parametrize(
    ("conf", "env", "message"),
    [
        (None, {}, "no net configurations found"),
        (
            {"cniVersion": "1.0.0", "name": "other", "type": "loopback"},
            {},
            'no net configuration with name "n"',
        ),
        (
            {"cniVersion": "1.0.0", "name": "n", "type": "mnt-nope"},
            {},
            'failed to find plugin "mnt-nope"',
        ),
        (
            {"cniVersion": "1.0.0", "name": "n", "type": "loopback"},
            {"cni_args": "a"},
            "invalid CNI_ARGS pair",
        ),
        (
            {"cniVersion": "1.0.0", "name": "n", "type": "loopback"},
            {"cap_args": ["x"]},
            "cannot unmarshal",
        ),
    ],
)
def test_errors(
    cnitool: Path,
    confdir: Path,
    cache_dir: Path,
    tmp_path: Path,
    conf: dict[str, Any] | None,
    env: dict[str, Any],
    message: str,
) -> None:
    if conf is not None:
        write_netconf(confdir, conf)
    proc = run_cnitool(
        cnitool,
        "add",
        "n",
        os.fspath(tmp_path / "no-netns"),
        netconfpath=confdir,
        cni_path=tmp_path,
        cache_dir=cache_dir,
        **env,
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert proc.stdout == ""
