"""multinet at cniVersion 1.1.0, driven directly (libcni 1.1.2 stops at 1.0.0).

The ``multinet`` executable is run with the CNI environment and a stdin config,
as a 1.1.0 runtime would: VERSION, STATUS (ready; a missing delegate binary is
code 50), GC (stale attachments removed given ``cni.dev/valid-attachments`` or
the older ``cni.dev/attachments``), and ADD/CHECK/DEL with 1.0.0 delegates
(Debian's plugins accept nothing newer) returning a 1.1.0 result.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.libcni import StateDirs, addresses
from tests.conformance.rig import Lab
from tests.conformance.test_multinet import (
    CNI_ARGS,
    allocated_ips,
    bridge_ports,
    cluster_delegate,
    journal_files,
    link_names,
    macvlan_delegate,
)

SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
# What VERSION answers: also 0.1.0 and 0.2.0, for the configs Multus accepts.
ACCEPTED = ["0.1.0", "0.2.0", *SUPPORTED]
root = pytest.mark.root


@dataclass(frozen=True)
class Reply:
    code: int  # exit status
    out: Any  # parsed stdout, None when empty
    stderr: str


def run_multinet(
    exe: Path,
    command: str,
    conf: dict[str, Any],
    *,
    cni_path: list[Path],
    container: str = "",
    netns: str = "",
    ifname: str = "",
    cni_args: str = "",
) -> Reply:
    """One CNI invocation of ``exe``; only the variables a runtime would set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update(CNI_COMMAND=command, CNI_PATH=":".join(map(str, cni_path)))
    for key, value in (
        ("CNI_CONTAINERID", container),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", ifname),
        ("CNI_ARGS", cni_args),
    ):
        if value:
            env[key] = value
    proc = subprocess.run(
        [exe], input=json.dumps(conf), env=env, capture_output=True, text=True, timeout=60
    )
    return Reply(
        proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None, proc.stderr
    )


def multinet_conf(
    dirs: StateDirs, cni_bin_dir: Path, delegates: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "cniVersion": "1.1.0",
        "name": "mn110",
        "type": "multinet",
        "cniDir": str(dirs.state),
        "binDir": str(cni_bin_dir),
        "delegates": delegates,
    }


def two_delegates(
    bridge: str, subnets: tuple[ipaddress.IPv4Network, ...], dirs: StateDirs
) -> list[dict[str, Any]]:
    return [
        cluster_delegate("1.0.0", bridge, subnets[0], dirs.ipam),
        macvlan_delegate("1.0.0", "sec", bridge, "bridge", subnets[1]),
    ]


def container() -> str:
    return f"mnt-{secrets.token_hex(6)}"


# -- no root needed ------------------------------------------------------------------


@pytest.mark.parametrize("asked", SUPPORTED)
def test_version_lists_every_supported_version(
    asked: str, multinet_exe: Path, tmp_path: Path
) -> None:
    reply = run_multinet(multinet_exe, "VERSION", {"cniVersion": asked}, cni_path=[tmp_path])
    assert reply.code == 0, reply
    assert reply.out == {"cniVersion": asked, "supportedVersions": ACCEPTED}


def test_status_ready(multinet_exe: Path, cni_bin_dir: Path, tmp_path: Path) -> None:
    dirs = StateDirs(tmp_path / "state", tmp_path / "ipam", tmp_path / "tuning")
    nets = [ipaddress.IPv4Network("10.250.1.0/24"), ipaddress.IPv4Network("10.250.2.0/24")]
    conf = multinet_conf(dirs, cni_bin_dir, two_delegates("mnt-unused", tuple(nets), dirs))
    reply = run_multinet(multinet_exe, "STATUS", conf, cni_path=[cni_bin_dir])
    assert (reply.code, reply.out) == (0, None), reply


@pytest.mark.parametrize("broken", ["cluster", "secondary"])
def test_status_missing_delegate_binary_is_code_50(
    broken: str, multinet_exe: Path, cni_bin_dir: Path, tmp_path: Path
) -> None:
    dirs = StateDirs(tmp_path / "state", tmp_path / "ipam", tmp_path / "tuning")
    nets = [ipaddress.IPv4Network("10.250.1.0/24"), ipaddress.IPv4Network("10.250.2.0/24")]
    delegates = two_delegates("mnt-unused", tuple(nets), dirs)
    if broken == "cluster":
        delegates[0]["plugins"].append({"type": "mnt-no-such-plugin"})
    else:  # every static delegate is added to every pod: ADD could not succeed
        delegates[1]["type"] = "mnt-no-such-plugin"
    conf = multinet_conf(dirs, cni_bin_dir, delegates)
    reply = run_multinet(multinet_exe, "STATUS", conf, cni_path=[cni_bin_dir])
    assert reply.code == 1
    assert reply.out["cniVersion"] == "1.1.0"
    assert reply.out["code"] == 50
    assert "mnt-no-such-plugin" in reply.out["msg"] + reply.out.get("details", "")


@pytest.mark.parametrize("command", ["STATUS", "GC"])
def test_status_and_gc_need_110(
    command: str, multinet_exe: Path, cni_bin_dir: Path, tmp_path: Path
) -> None:
    dirs = StateDirs(tmp_path / "state", tmp_path / "ipam", tmp_path / "tuning")
    nets = [ipaddress.IPv4Network("10.250.1.0/24"), ipaddress.IPv4Network("10.250.2.0/24")]
    conf = multinet_conf(dirs, cni_bin_dir, two_delegates("mnt-unused", tuple(nets), dirs))
    conf["cniVersion"] = "1.0.0"
    conf["cni.dev/valid-attachments"] = []
    reply = run_multinet(multinet_exe, command, conf, cni_path=[cni_bin_dir])
    assert reply.code == 1
    assert (reply.out["cniVersion"], reply.out["code"]) == ("1.0.0", 1)


# -- real networks -----------------------------------------------------------------------


@root
def test_add_check_del_110_with_100_delegates(multinet_exe: Path, lab: Lab) -> None:
    bridge = lab.make_bridge()
    netns, subnets, dirs, cni_bin_dir = lab.netns, lab.subnets, lab.dirs, lab.cni_bin_dir
    conf = multinet_conf(dirs, cni_bin_dir, two_delegates(bridge, subnets, dirs))
    cid = container()
    kw: dict[str, Any] = dict(
        cni_path=[cni_bin_dir], container=cid, netns=netns, ifname="eth0", cni_args=CNI_ARGS
    )

    add = run_multinet(multinet_exe, "ADD", conf, **kw)
    assert add.code == 0, add
    result = add.out
    assert result["cniVersion"] == "1.1.0"
    (eth0,) = [i for i, iface in enumerate(result["interfaces"]) if iface.get("sandbox") == netns]
    assert result["interfaces"][eth0]["name"] == "eth0"
    gateway = str(subnets[0][1])
    assert result["ips"] == [
        {"interface": eth0, "address": f"{subnets[0][2]}/24", "gateway": gateway}
    ]
    assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": gateway}]
    assert addresses(netns, "eth0") == {f"{subnets[0][2]}/24"}
    assert addresses(netns, "net1") == {f"{subnets[1][5]}/24"}

    # CHECK and DEL get the cached result as prevResult, as libcni passes it.
    with_prev = dict(conf, prevResult=result)
    check = run_multinet(multinet_exe, "CHECK", with_prev, **kw)
    assert (check.code, check.out) == (0, None), check

    for _ in range(2):
        delete = run_multinet(multinet_exe, "DEL", with_prev, **kw)
        assert (delete.code, delete.out) == (0, None), delete
        assert link_names(netns) == {"lo"}
        assert bridge_ports(bridge) == []
        assert allocated_ips(dirs.ipam) == []
        assert journal_files(dirs) == []


@root
@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_gc_removes_stale_attachments(key: str, multinet_exe: Path, lab: Lab) -> None:
    bridge, subnets, dirs, cni_bin_dir = lab.make_bridge(), lab.subnets, lab.dirs, lab.cni_bin_dir
    conf = multinet_conf(
        dirs,
        cni_bin_dir,
        [
            cluster_delegate("1.0.0", bridge, subnets[0], dirs.ipam),
            # host-local (not static) so that both containers can have one.
            {
                "cniVersion": "1.0.0",
                "name": "sec",
                "type": "macvlan",
                "master": bridge,
                "mode": "bridge",
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(dirs.ipam),
                    "ranges": [[{"subnet": str(subnets[1])}]],
                },
            },
        ],
    )
    kept, stale = (container(), lab.new_netns()), (container(), lab.new_netns())
    for cid, ns in (kept, stale):
        add = run_multinet(
            multinet_exe,
            "ADD",
            conf,
            cni_path=[cni_bin_dir],
            container=cid,
            netns=ns,
            ifname="eth0",
        )
        assert add.code == 0, add
        assert link_names(ns) == {"lo", "eth0", "net1"}
    assert len(allocated_ips(dirs.ipam)) == 4
    assert len(bridge_ports(bridge)) == 2

    gc_conf = dict(conf, **{key: [{"containerID": kept[0], "ifname": "eth0"}]})
    gc = run_multinet(multinet_exe, "GC", gc_conf, cni_path=[cni_bin_dir])
    assert (gc.code, gc.out) == (0, None), gc

    assert link_names(stale[1]) == {"lo"}
    assert link_names(kept[1]) == {"lo", "eth0", "net1"}
    assert sorted(allocated_ips(dirs.ipam)) == sorted([str(subnets[0][2]), str(subnets[1][2])])
    assert len(bridge_ports(bridge)) == 1
    assert f"{kept[0]}@eth0.json" in journal_files(dirs)
    assert not [f for f in journal_files(dirs) if f.startswith(stale[0])]

    # GC with nothing valid removes the rest; DEL afterwards still succeeds.
    gc = run_multinet(multinet_exe, "GC", dict(conf, **{key: []}), cni_path=[cni_bin_dir])
    assert (gc.code, gc.out) == (0, None), gc
    for cid, ns in (kept, stale):
        assert link_names(ns) == {"lo"}
        delete = run_multinet(
            multinet_exe,
            "DEL",
            conf,
            cni_path=[cni_bin_dir],
            container=cid,
            netns=ns,
            ifname="eth0",
        )
        assert delete.code == 0, delete
    assert allocated_ips(dirs.ipam) == []
    assert bridge_ports(bridge) == []
    assert journal_files(dirs) == []
