"""multinet-sriov through the meta-plugin: NADs with a resourceName, a fake kubelet serving
the PodResources API, VFs that are veths on a bridge (see conftest)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import LeakChecker
from tests.integration.networks.conftest import PodRef
from tests.integration.plugins.sriov.conftest import RESOURCE, Sriov
from tests.support.sriov import ORIGINAL

pytestmark = pytest.mark.root
MANIFESTS = pytest.mark.parametrize("source", ["manifests"], indirect=True)
INVALID_CONFIG = 7


def subnet_hosts(sriov: Sriov, n: int) -> list[str]:
    net = sriov.k8s.confs.subnet()
    return [f"{net.network_address + i}/{net.prefixlen}" for i in range(2, 2 + n)]


def pod_link(netns: str, ifname: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ip", "-n", Path(netns).name, "-j", "addr", "show", "dev", ifname],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    link: dict[str, Any] = json.loads(out.stdout)[0]
    return link


def cidrs(link: dict[str, Any]) -> set[str]:
    return {f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"}


def assert_restored(sriov: Sriov, index: int, before: dict[str, Any]) -> None:
    assert sriov.nic.vf_state(index) == ORIGINAL
    link = sriov.host_link(sriov.vf_netdevs[index])
    assert link is not None, "the VF netdev is not back in the host under its name"
    assert (link["address"], link["mtu"]) == (before["address"], before["mtu"])


def add_fails_and_leaves_vf_as_found(sriov: Sriov, pod: PodRef, index: int) -> dict[str, Any]:
    """ADD fails, and the VF (PF side and netdev), the cache and the allocation are as
    before it; the error JSON."""
    before = sriov.host_link(sriov.vf_netdevs[index])
    assert before is not None
    rc, out, _ = sriov.run("ADD", pod, sriov.netns(), sriov.k8s.container_id())
    assert rc != 0 and out is not None
    assert_restored(sriov, index, before)
    assert sriov.cache_files() == []
    error: dict[str, Any] = out
    return error


# -- ADD / CHECK / DEL -------------------------------------------------------------------


def test_one_vf_add_check_del_through_the_meta_plugin(sriov: Sriov, leaks: LeakChecker) -> None:
    address = subnet_hosts(sriov, 1)[0]
    sriov.nad("sriov-a", vlan=100, spoofchk="off", trust="on", mtu=1400)
    pod = sriov.pod([{"name": "sriov-a", "ips": [address]}], [sriov.vf(1), sriov.vf(0)])
    before = sriov.host_link(sriov.vf_netdevs[0])
    assert before is not None
    netns, cid = sriov.netns(), sriov.k8s.container_id()

    rc, out, err = sriov.run("ADD", pod, netns, cid)
    assert rc == 0, (out, err)
    assert sriov.kubelet.calls == ["Get"]
    # The lowest device ID went to the one network; its netdev is net1 in the pod.
    assert sriov.host_link(sriov.vf_netdevs[0]) is None
    link = pod_link(netns, "net1")
    assert cidrs(link) == {address}
    assert link["mtu"] == 1400
    state = sriov.nic.vf_state(0)
    assert (state["vlan"], state["spoofchk"], state["trust"]) == (100, False, True)
    status = sriov.k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None and status[1]["interface"] == "net1"
    assert status[1]["ips"] == [address.split("/")[0]]

    assert sriov.run("CHECK", pod, netns, cid).rc == 0
    assert sriov.run("DEL", pod, netns, cid).rc == 0
    assert_restored(sriov, 0, before)
    assert sriov.cache_files() == []
    leaks.assert_clean()


@MANIFESTS
def test_two_vfs_of_one_resource_get_two_devices_and_carry_traffic_between_pods(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    a_ip, b_ip, a2_ip = subnet_hosts(sriov, 3)
    sriov.nad("sriov-a")
    sriov.nad("sriov-b")
    pod_a = sriov.pod(
        [{"name": "sriov-a", "ips": [a_ip]}, {"name": "sriov-b", "ips": [a2_ip]}],
        [sriov.vf(0), sriov.vf(1)],
        name="pod-a",
    )
    pod_b = sriov.pod([{"name": "sriov-a", "ips": [b_ip]}], [sriov.vf(2)], name="pod-b")
    ns_a, ns_b = sriov.netns(), sriov.netns()
    cid_a, cid_b = sriov.k8s.container_id(), sriov.k8s.container_id()
    assert sriov.run("ADD", pod_a, ns_a, cid_a).rc == 0
    assert sriov.run("ADD", pod_b, ns_b, cid_b).rc == 0
    assert cidrs(pod_link(ns_a, "net1")) == {a_ip} and cidrs(pod_link(ns_a, "net2")) == {a2_ip}
    assert sriov.host_link(sriov.vf_netdevs[0]) is None
    assert sriov.host_link(sriov.vf_netdevs[1]) is None

    echoed = tcp_echo(ns_a, a_ip.split("/")[0], ns_b, b"hello over a VF")
    assert echoed == b"hello over a VF"

    assert sriov.run("CHECK", pod_a, ns_a, cid_a).rc == 0
    assert sriov.run("DEL", pod_a, ns_a, cid_a).rc == 0
    assert sriov.run("DEL", pod_b, ns_b, cid_b).rc == 0
    for i in range(3):
        assert sriov.nic.vf_state(i) == ORIGINAL
        assert sriov.host_link(sriov.vf_netdevs[i]) is not None
    assert sriov.cache_files() == []
    leaks.assert_clean()


SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7007))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
c.sendall(c.recv(1024))
c.close()
"""

CLIENT = """
import socket, sys, time
for _ in range(50):
    try:
        c = socket.create_connection((sys.argv[1], 7007), timeout=2)
        break
    except OSError:
        time.sleep(0.1)
c.sendall(sys.argv[2].encode())
sys.stdout.write(c.recv(1024).decode())
"""


def tcp_echo(server_ns: str, server_ip: str, client_ns: str, payload: bytes) -> bytes:
    """A TCP echo server in one pod namespace, a client in the other (nothing outside)."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", Path(server_ns).name, sys.executable, "-c",
         textwrap.dedent(SERVER), server_ip],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = subprocess.run(
            ["ip", "netns", "exec", Path(client_ns).name, sys.executable, "-c",
             textwrap.dedent(CLIENT), server_ip, payload.decode()],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert client.returncode == 0, client.stderr
        return client.stdout.encode()
    finally:
        server.kill()
        server.wait()


# -- every key, restore, DPDK ---------------------------------------------------------------


@MANIFESTS
def test_every_config_key_reaches_the_backend_and_del_restores_it_exactly(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    sriov.nad(
        "sriov-all",
        vlan=42, vlanQoS=5, vlanProto="802.1ad", mac="ca:fe:00:00:00:42", spoofchk="off",
        trust="on", link_state="disable", min_tx_rate=100, max_tx_rate=1000,
        ipam={},
    )  # fmt: skip
    pod = sriov.pod([{"name": "sriov-all"}], [sriov.vf(1)])
    before = sriov.host_link(sriov.vf_netdevs[1])
    assert before is not None
    netns, cid = sriov.netns(), sriov.k8s.container_id()
    rc, out, err = sriov.run("ADD", pod, netns, cid)
    assert rc == 0, (out, err)
    assert pod_link(netns, "net1")["address"] == "ca:fe:00:00:00:42"
    pf = sriov.nic.pf
    assert [(c["pf"], c["vf"], c["setting"], c["values"]) for c in sriov.nic.calls()] == [
        (pf, 1, "mac", {"mac": "ca:fe:00:00:00:42"}),
        (pf, 1, "vlan", {"vlan": 42, "qos": 5, "proto": "802.1ad"}),
        (pf, 1, "spoofchk", {"spoofchk": False}),
        (pf, 1, "trust", {"trust": True}),
        (pf, 1, "link_state", {"link_state": "disable"}),
        (pf, 1, "rate", {"min_tx_rate": 100, "max_tx_rate": 1000}),
    ]
    assert sriov.run("CHECK", pod, netns, cid).rc == 0
    assert sriov.run("DEL", pod, netns, cid).rc == 0
    restores = [c["setting"] for c in sriov.nic.calls()[6:]]
    assert restores == ["rate", "link_state", "trust", "spoofchk", "vlan", "mac"]
    assert_restored(sriov, 1, before)
    leaks.assert_clean()


@MANIFESTS
def test_check_fails_when_a_setting_was_changed_behind_its_back(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    sriov.nad("sriov-a", vlan=7, ipam={})
    pod = sriov.pod([{"name": "sriov-a"}], [sriov.vf(0)])
    netns, cid = sriov.netns(), sriov.k8s.container_id()
    assert sriov.run("ADD", pod, netns, cid).rc == 0
    table = sriov.nic.table()
    table["vfs"][sriov.nic.pf]["0"]["vlan"] = 8
    sriov.nic.table_path.write_text(json.dumps(table))
    rc, out, _ = sriov.run("CHECK", pod, netns, cid)
    assert rc != 0 and "vlan" in out["msg"]
    assert sriov.run("DEL", pod, netns, cid).rc == 0
    leaks.assert_clean()


@MANIFESTS
def test_dpdk_mode_sets_the_pf_side_only_and_del_remembers_it(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    dpdk = sriov.add_dpdk_vf()
    sriov.nad("sriov-dpdk", vlan=10, ipam={})
    pod = sriov.pod([{"name": "sriov-dpdk"}], [dpdk])
    netns, cid = sriov.netns(), sriov.k8s.container_id()
    rc, out, err = sriov.run("ADD", pod, netns, cid)
    assert rc == 0, (out, err)
    index = len(sriov.nic.vfs) - 1
    assert sriov.nic.vf_state(index)["vlan"] == 10
    pod_links = subprocess.run(
        ["ip", "-n", Path(netns).name, "-j", "link"], capture_output=True, text=True, check=True
    )
    assert "net1" not in {link["ifname"] for link in json.loads(pod_links.stdout)}
    cache = json.loads((sriov.plugin_dir / f"{cid}-net1.json").read_text())
    assert cache["dpdk"] is True
    assert sriov.run("CHECK", pod, netns, cid).rc == 0
    assert sriov.run("DEL", pod, netns, cid).rc == 0
    assert sriov.nic.vf_state(index) == ORIGINAL
    leaks.assert_clean()


# -- allocation, lost netns, rollback -------------------------------------------------------


@MANIFESTS
def test_a_vf_is_allocated_once_unless_its_owners_netns_is_gone(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    sriov.nad("sriov-a", ipam={})
    first = sriov.pod([{"name": "sriov-a"}], [sriov.vf(0)], name="first")
    second = sriov.pod([{"name": "sriov-a"}], [sriov.vf(0)], name="second")  # a kubelet bug
    ns1, ns2 = sriov.netns(), sriov.netns()
    cid1, cid2 = sriov.k8s.container_id(), sriov.k8s.container_id()
    assert sriov.run("ADD", first, ns1, cid1).rc == 0
    rc, out, _ = sriov.run("ADD", second, ns2, cid2)
    assert rc != 0 and "already allocated" in out["msg"]
    assert sriov.k8s.source.network_status(second.namespace, second.name) is None
    # The first pod's netns goes and its DEL never came. The kernel gives a real VF's
    # netdev back to the host; a veth dies with the netns, so the test makes it again.
    subprocess.run(["ip", "netns", "del", Path(ns1).name], check=True)
    sriov.remake_vf(0)
    rc, out, err = sriov.run("ADD", second, ns2, cid2)
    assert rc == 0, (out, err)
    assert cidrs(pod_link(ns2, "net1")) == set()
    # The first pod's late DEL succeeds and leaves the VF, now the second's, alone.
    assert sriov.run("DEL", first, ns1, cid1).rc == 0
    assert sriov.host_link(sriov.vf_netdevs[0]) is None
    assert sriov.run("DEL", second, ns2, cid2).rc == 0
    assert sriov.nic.vf_state(0) == ORIGINAL
    assert sriov.host_link(sriov.vf_netdevs[0]) is not None
    assert sriov.cache_files() == []
    leaks.assert_clean()


@MANIFESTS
def test_del_after_the_netns_is_gone_succeeds_and_restores_the_pf_side(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    sriov.nad("sriov-a", vlan=99, trust="on", ipam={})
    pod = sriov.pod([{"name": "sriov-a"}], [sriov.vf(2)])
    netns, cid = sriov.netns(), sriov.k8s.container_id()
    assert sriov.run("ADD", pod, netns, cid).rc == 0
    subprocess.run(["ip", "netns", "del", Path(netns).name], check=True)
    rc, out, err = sriov.run("DEL", pod, netns, cid)
    assert rc == 0, (out, err)
    assert sriov.nic.vf_state(2) == ORIGINAL
    assert sriov.cache_files() == []
    assert sriov.run("DEL", pod, netns, cid).rc == 0  # and again: nothing left to do
    leaks.assert_clean()


@MANIFESTS
def test_a_partial_apply_is_rolled_back(sriov: Sriov, leaks: LeakChecker) -> None:
    address = subnet_hosts(sriov, 1)[0]
    sriov.nad("sriov-a", vlan=5, spoofchk="off", trust="on", link_state="enable")
    sriov.nic.refuse(0, "trust")  # a PF whose firmware refuses trust
    pod = sriov.pod([{"name": "sriov-a", "ips": [address]}], [sriov.vf(0)])
    out = add_fails_and_leaves_vf_as_found(sriov, pod, 0)
    assert all(word in out["msg"] for word in ("trust", "VF 0", sriov.nic.pf))
    assert [c["setting"] for c in sriov.nic.calls()] == [
        "vlan", "spoofchk",  # applied
        "spoofchk", "vlan",  # undone, in reverse
    ]  # fmt: skip
    leaks.assert_clean()


def test_an_ipam_failure_after_the_move_is_rolled_back(sriov: Sriov, leaks: LeakChecker) -> None:
    sriov.nad("sriov-a", vlan=3, ipam={"type": "static", "addresses": [{"address": "bad"}]})
    pod = sriov.pod([{"name": "sriov-a"}], [sriov.vf(0)])
    add_fails_and_leaves_vf_as_found(sriov, pod, 0)
    leaks.assert_clean()


# -- the kubelet ------------------------------------------------------------------------------


@MANIFESTS
def test_the_checkpoint_file_when_the_kubelet_socket_is_absent(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    sriov.kubelet.stop()  # no socket
    sriov.nad("sriov-a", ipam={})
    pod = sriov.pod([{"name": "sriov-a"}], [])
    sriov.checkpoint.write_text(
        json.dumps(
            {"Data": {"PodDeviceEntries": [
                {"PodUID": pod.uid, "ContainerName": "app", "ResourceName": RESOURCE,
                 "DeviceIDs": {"0": [sriov.vf(1)]}},
            ], "RegisteredDevices": {}}, "Checksum": 0}
        )
    )  # fmt: skip
    netns, cid = sriov.netns(), sriov.k8s.container_id()
    rc, out, err = sriov.run("ADD", pod, netns, cid)
    assert rc == 0, (out, err)
    assert sriov.host_link(sriov.vf_netdevs[1]) is None
    assert sriov.run("DEL", pod, netns, cid).rc == 0
    leaks.assert_clean()


@MANIFESTS
def test_too_few_devices_is_code_7_naming_the_resource(sriov: Sriov, leaks: LeakChecker) -> None:
    sriov.nad("sriov-a", ipam={})
    sriov.nad("sriov-b", ipam={})
    pod = sriov.pod([{"name": "sriov-a"}, {"name": "sriov-b"}], [sriov.vf(0)])
    netns, cid = sriov.netns(), sriov.k8s.container_id()
    rc, out, _ = sriov.run("ADD", pod, netns, cid)
    assert rc != 0
    assert out["code"] == INVALID_CONFIG
    assert RESOURCE in out["msg"] and "2 network(s)" in out["msg"] and "assigned 1" in out["msg"]
    assert sriov.host_link(sriov.vf_netdevs[0]) is not None
    leaks.assert_clean()


def test_device_info_from_the_device_plugin_reaches_network_status(
    sriov: Sriov, leaks: LeakChecker
) -> None:
    sriov.nad("sriov-a", ipam={})
    pod = sriov.pod([{"name": "sriov-a"}], [sriov.vf(0)])
    info = {
        "type": "pci",
        "version": "1.1.0",
        "pci": {"pci-address": sriov.vf(0), "pf-pci-address": sriov.nic.pf_pci},
    }
    dp = sriov.devinfo / "dp" / f"intel.com-sriov_netdevice-{sriov.vf(0)}-device.json"
    dp.parent.mkdir(parents=True)
    dp.write_text(json.dumps(info))
    netns, cid = sriov.netns(), sriov.k8s.container_id()
    rc, out, err = sriov.run("ADD", pod, netns, cid)
    assert rc == 0, (out, err)
    status = sriov.k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert status[1]["device-info"] == info
    assert "device-info" not in status[0]
    assert sriov.run("DEL", pod, netns, cid).rc == 0
    assert dp.exists()  # the device plugin's file is not ours
    leaks.assert_clean()
