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
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
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

VERSIONS = ["0.3.1", "0.4.0", "1.0.0"]
root = pytest.mark.root


@pytest.fixture
def ipam_dir(tmp_path: Path) -> Iterator[Path]:
    """host-local's dataDir for this test, removed afterwards."""
    path = tmp_path / "ipam"
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
def test_bridge_add_check_del(
    version: str,
    cnitool: Path,
    cni_bin_dir: Path,
    netns: str,
    confdir: Path,
    cache_dir: Path,
    bridge_name: str,
    subnet: ipaddress.IPv4Network,
    ipam_dir: Path,
) -> None:
    net = "mnt-bridge"
    write_netconf(confdir, bridge_conflist(version, net, bridge_name, subnet, ipam_dir))

    kw: dict[str, Any] = dict(netconfpath=confdir, cni_path=cni_bin_dir, cache_dir=cache_dir)

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return run_cnitool(cnitool, command, net, netns, **kw)

    add = run("add")
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)
    assert result["cniVersion"] == version
    expected = f"{subnet[2]}/{subnet.prefixlen}"
    assert [ip["address"] for ip in result["ips"]] == [expected]
    assert addresses(netns, "eth0") == {expected}
    cached = cache_dir / "results" / f"{net}-{container_id(netns)}-eth0"
    assert cached.is_file()

    check = run("check")
    if version == "0.3.1":  # libcni refuses CHECK below 0.4.0
        assert check.returncode == 1
        assert "does not support the CHECK command" in check.stderr
    else:
        assert check.returncode == 0, check.stderr

    delete = run("del")
    assert delete.returncode == 0, delete.stderr
    assert "eth0" not in link_names(netns)
    assert not cached.exists()
    assert allocated_ips(ipam_dir) == []

    again = run("del")
    assert again.returncode == 0, again.stderr


@root
def test_shared_bridge_check_and_missing_interface(
    cnitool: Path,
    cni_bin_dir: Path,
    netns_factory: Callable[[], str],
    confdir: Path,
    cache_dir: Path,
    bridge: str,
    subnet: ipaddress.IPv4Network,
    ipam_dir: Path,
) -> None:
    net = "mnt-bridge"
    write_netconf(confdir, bridge_conflist("1.0.0", net, bridge, subnet, ipam_dir))
    kw: dict[str, Any] = dict(netconfpath=confdir, cni_path=cni_bin_dir, cache_dir=cache_dir)
    first, second = netns_factory(), netns_factory()

    for ns, host in ((first, 2), (second, 3)):
        add = run_cnitool(cnitool, "add", net, ns, **kw)
        assert add.returncode == 0, add.stderr
        assert addresses(ns, "eth0") == {f"{subnet[host]}/{subnet.prefixlen}"}
    for ns in (first, second):
        check = run_cnitool(cnitool, "check", net, ns, **kw)
        assert check.returncode == 0, check.stderr

    subprocess.run(["ip", "-n", Path(first).name, "link", "del", "eth0"], check=True)
    check = run_cnitool(cnitool, "check", net, first, **kw)
    assert check.returncode == 1
    assert "eth0" in check.stderr
    for ns in (first, second):
        delete = run_cnitool(cnitool, "del", net, ns, **kw)
        assert delete.returncode == 0, delete.stderr
    assert allocated_ips(ipam_dir) == []


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_cap_args_mac(
    version: str,
    cnitool: Path,
    cni_bin_dir: Path,
    netns: str,
    confdir: Path,
    cache_dir: Path,
    bridge_name: str,
    subnet: ipaddress.IPv4Network,
    ipam_dir: Path,
    tmp_path: Path,
) -> None:
    net = "mnt-mac"
    mac = "02:6d:6e:74:00:2a"
    tuning = {"type": "tuning", "capabilities": {"mac": True}, "dataDir": str(tmp_path / "tuning")}
    write_netconf(confdir, bridge_conflist(version, net, bridge_name, subnet, ipam_dir, tuning))
    kw: dict[str, Any] = dict(
        netconfpath=confdir, cni_path=cni_bin_dir, cache_dir=cache_dir, cap_args={"mac": mac}
    )

    add = run_cnitool(cnitool, "add", net, netns, **kw)
    assert add.returncode == 0, add.stderr
    (link,) = ip_json(netns, "link", "show", "dev", "eth0")
    assert link["address"] == mac
    result = json.loads(add.stdout)
    assert mac in [i.get("mac") for i in result["interfaces"] if i.get("sandbox")]

    if version != "0.3.1":
        check = run_cnitool(cnitool, "check", net, netns, **kw)
        assert check.returncode == 0, check.stderr
    for _ in range(2):
        delete = run_cnitool(cnitool, "del", net, netns, **kw)
        assert delete.returncode == 0, delete.stderr
    assert "eth0" not in link_names(netns)
    assert allocated_ips(ipam_dir) == []


RECORDER = """#!{python}
# Fake CNI plugin: logs what it was given; ADD passes prevResult through.
import json, os, sys
conf = json.load(sys.stdin)
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
with open({log!r}, "a") as f:
    f.write(json.dumps({{"env": env, "conf": conf}}) + "\\n")
if env["CNI_COMMAND"] == "ADD":
    json.dump(conf["prevResult"], sys.stdout)
"""


@root
@pytest.mark.parametrize("version", VERSIONS)
def test_plugins_get_prev_result_env_and_capabilities(
    version: str,
    cnitool: Path,
    cni_bin_dir: Path,
    netns: str,
    confdir: Path,
    cache_dir: Path,
    bridge_name: str,
    subnet: ipaddress.IPv4Network,
    ipam_dir: Path,
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "recorder.log"
    recorder = bin_dir / "recorder"
    recorder.write_text(RECORDER.format(python=sys.executable, log=str(log)))
    recorder.chmod(0o755)

    net = "mnt-rec"
    plugin = {"type": "recorder", "capabilities": {"wanted": True, "declined": False}, "x": 1}
    write_netconf(confdir, bridge_conflist(version, net, bridge_name, subnet, ipam_dir, plugin))
    kw: dict[str, Any] = dict(
        netconfpath=confdir,
        cni_path=[bin_dir, cni_bin_dir],
        cache_dir=cache_dir,
        ifname="net7",
        cni_args={"IgnoreUnknown": "1", "K8S_POD_NAME": "p"},
        cap_args={"wanted": [1], "declined": True, "unknown": "u"},
    )

    add = run_cnitool(cnitool, "add", net, netns, **kw)
    assert add.returncode == 0, add.stderr
    result = json.loads(add.stdout)
    assert addresses(netns, "net7") == {f"{subnet[2]}/{subnet.prefixlen}"}
    if version != "0.3.1":
        assert run_cnitool(cnitool, "check", net, netns, **kw).returncode == 0
    assert run_cnitool(cnitool, "del", net, netns, **kw).returncode == 0

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    commands = ["ADD", "DEL"] if version == "0.3.1" else ["ADD", "CHECK", "DEL"]
    assert [c["env"]["CNI_COMMAND"] for c in calls] == commands
    for call in calls:
        env, conf = call["env"], call["conf"]
        assert env["CNI_CONTAINERID"] == container_id(netns)
        assert env["CNI_NETNS"] == netns
        assert env["CNI_IFNAME"] == "net7"
        assert env["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=p"
        assert env["CNI_PATH"] == f"{bin_dir}:{cni_bin_dir}"
        assert (conf["cniVersion"], conf["name"], conf["x"]) == (version, net, 1)
        assert conf["runtimeConfig"] == {"wanted": [1]}  # only declared-true capabilities
        # ADD gets the bridge's result; CHECK and DEL get libcni's cached final result,
        # except DEL below 0.4.0, which gets none.
        if env["CNI_COMMAND"] == "DEL" and version == "0.3.1":
            assert "prevResult" not in conf
        else:
            assert conf["prevResult"] == result


@root
def test_single_conf_fallback(
    cnitool: Path, cni_bin_dir: Path, netns: str, confdir: Path, cache_dir: Path
) -> None:
    write_netconf(confdir, {"cniVersion": "1.0.0", "name": "mnt-lo", "type": "loopback"})
    kw: dict[str, Any] = dict(netconfpath=confdir, cni_path=cni_bin_dir, cache_dir=cache_dir)

    add = run_cnitool(cnitool, "add", "mnt-lo", netns, **kw)
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["interfaces"][0]["name"] == "lo"
    (lo,) = ip_json(netns, "link", "show", "dev", "lo")
    assert "UP" in lo["flags"]
    assert run_cnitool(cnitool, "check", "mnt-lo", netns, **kw).returncode == 0
    assert run_cnitool(cnitool, "del", "mnt-lo", netns, **kw).returncode == 0


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
