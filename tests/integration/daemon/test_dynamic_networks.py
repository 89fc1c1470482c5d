"""Dynamic networks: a running pod's interfaces follow its networks annotation.

A real multinetd (`dynamicNetworks: true`) on the Kubernetes API test server, real
namespaces and Debian's reference plugins: the pod's sandbox is ADDed through the shim,
then the test patches the pod's annotation (as `kubectl annotate` does) and watches the
pod's interfaces, network-status, events and the journal follow.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import signal
import subprocess
import threading
import time
from typing import Any

import pytest

from multinet.shim import client as shim
from tests.integration.daemon.dynamic_cluster import INTERVAL, Cluster
from tests.integration.daemon.sandbox import Sandbox, ip_json
from tests.support.kubeapi import KubeAPIServer


@pytest.fixture
def cluster(sandbox: Sandbox, kubeapi: KubeAPIServer) -> Cluster:
    return Cluster(sandbox, kubeapi)


def in_subnet(cidrs: list[str], subnet: ipaddress.IPv4Network) -> bool:
    return len(cidrs) == 1 and ipaddress.IPv4Interface(cidrs[0]).ip in subnet


def test_a_network_added_to_a_running_pod_appears_and_goes_when_removed(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    d = c.daemon()
    pod = c.running()
    assert c.links(pod) == ["eth0"]

    c.annotate(pod, "blue")
    c.wait_links(pod, ["eth0", "net1"])
    # The status is written once the change is done: the link exists before its address.
    c.wait_status(pod, [("kube-system/cluster", "eth0"), ("default/blue", "net1")])
    assert in_subnet(c.addresses(pod, "net1"), c.subnets["blue"])
    sandbox.wait_for(
        lambda: any(r == "AddedInterface" and "net1" in m for _, r, m in c.events(pod))
    )
    (row,) = d.get("/v1/attachments")[1]
    assert [(n["interface"], n["origin"], n["added"]) for n in row["networks"]] == [
        ("eth0", "cluster", "at creation"),
        ("net1", "annotation", "later"),
    ]
    assert len(sandbox.allocations()) == 2

    c.annotate(pod, "")
    c.wait_links(pod, ["eth0"])
    c.wait_status(pod, [("kube-system/cluster", "eth0")])
    assert len(sandbox.allocations()) == 1  # the secondary's address was released
    sandbox.wait_for(
        lambda: any(r == "RemovedInterface" and "net1" in m for _, r, m in c.events(pod))
    )
    # Counted once the change is reported (just after its events are queued).
    sandbox.wait_for(
        lambda: 'multinet_network_changes_total{result="applied"} 2' in d.get("/metrics")[1]
    )

    c.finish(pod)


def test_two_networks_added_and_one_removed_in_one_change(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    c.daemon()
    pod = c.running("blue, green")
    assert c.links(pod) == ["eth0", "net1", "net2"]
    green = c.addresses(pod, "net2")

    # green keeps net2 (no explicit name: it keeps the one it got), blue leaves net1, and
    # blue comes back twice under explicit names.
    c.annotate(
        pod,
        [
            {"name": "green"},
            {"name": "blue", "interface": "data1"},
            {"name": "blue", "interface": "data2"},
        ],
    )
    c.wait_links(pod, ["data1", "data2", "eth0", "net2"])
    c.wait_status(
        pod,
        [
            ("kube-system/cluster", "eth0"),
            ("default/green", "net2"),
            ("default/blue", "data1"),
            ("default/blue", "data2"),
        ],
    )
    assert c.addresses(pod, "net2") == green  # untouched
    for ifname in ("data1", "data2"):
        assert in_subnet(c.addresses(pod, ifname), c.subnets["blue"])
    # A new element without a name takes the lowest free netN: net1 again.
    c.annotate(pod, "green, blue@data1, blue@data2, blue")
    c.wait_links(pod, ["data1", "data2", "eth0", "net1", "net2"])
    c.finish(pod)


def test_an_invalid_annotation_changes_nothing_and_says_why(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    d = c.daemon()
    pod = c.running("blue")
    for value, problem in (
        ("blue, nosuch", "default/nosuch not found"),
        ('[{"name": 7}]', "name"),
        ('[{"name": "green", "default-route": ["10.9.9.1"]}]', "default-route"),
    ):
        c.annotate(pod, value)
        sandbox.wait_for(
            lambda p=problem: any(
                t == "Warning" and r == "NetworkChangeRejected" and p in m
                for t, r, m in c.events(pod)
            )
        )
        assert c.links(pod) == ["eth0", "net1"]
        assert c.status(pod) == [("kube-system/cluster", "eth0"), ("default/blue", "net1")]
    sandbox.wait_for(
        lambda: 'multinet_network_changes_total{result="rejected"} 3' in d.get("/metrics")[1]
    )
    c.annotate(pod, "blue, green")  # a valid one again is applied
    c.wait_links(pod, ["eth0", "net1", "net2"])
    c.finish(pod)


def test_a_daemon_killed_mid_change_is_reconciled_on_restart(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    d = c.daemon()
    pod = c.running("blue")
    sandbox.block("ADD")
    c.annotate(pod, "blue, slow")
    sandbox.wait_for(
        lambda: any(call.startswith(f"ADD {pod.cid} net2") for call in sandbox.calls())
    )
    d.stop(signal.SIGKILL)
    (journal,) = (sandbox.state / "journal").glob("*.json")
    entries = json.loads(journal.read_text())["entries"]
    assert [(e["ifname"], e["state"]) for e in entries] == [
        ("eth0", "added"),
        ("net1", "added"),
        ("net2", "adding"),  # journaled before its delegate ran
    ]
    sandbox.unblock()
    # Meanwhile the user removes blue: the restarted daemon catches up on both.
    c.annotate(pod, "slow")
    c.daemon()
    # slow takes the lowest free name, net1, which blue left.
    c.wait_status(pod, [("kube-system/cluster", "eth0"), ("default/slow", "net1")])
    c.wait_links(pod, ["eth0"])  # blue's net1 gone; mndtest makes no interface
    calls = [call.split()[:3] for call in sandbox.calls()]
    # The interrupted ADD was undone, then slow was added again.
    assert calls == [["ADD", pod.cid, "net2"], ["DEL", pod.cid, "net2"], ["ADD", pod.cid, "net1"]]
    assert len(sandbox.allocations()) == 1  # blue's address was released
    c.finish(pod)


def test_a_change_during_the_sandbox_del_attaches_nothing(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    c.daemon()
    pod = c.running("slow")
    sandbox.block("DEL")
    deleting = threading.Thread(target=c.delete, args=(pod,))
    deleting.start()
    sandbox.wait_for(lambda: any(call.startswith(f"DEL {pod.cid}") for call in sandbox.calls()))
    c.annotate(pod, "slow, blue")  # queued behind the DEL, which holds the sandbox's lock
    time.sleep(5 * INTERVAL)
    sandbox.unblock()
    deleting.join(timeout=60)
    time.sleep(5 * INTERVAL)  # the change ran after the DEL: it found no sandbox
    assert c.links(pod) == []
    sandbox.assert_clean(pod.netns)


def test_a_flapping_annotation_costs_bounded_work(sandbox: Sandbox, cluster: Cluster) -> None:
    c = cluster
    d = c.daemon()
    pod = c.running()
    other = c.pod()
    started = time.monotonic()
    for i in range(60):
        c.annotate(pod, "blue" if i % 2 == 0 else "")
        time.sleep(0.01)
    c.add(other)  # CNI requests are served meanwhile
    c.annotate(pod, "green")
    elapsed = time.monotonic() - started
    c.wait_status(pod, [("kube-system/cluster", "eth0"), ("default/green", "net1")])
    assert c.links(pod) == ["eth0", "net1"]
    assert in_subnet(c.addresses(pod, "net1"), c.subnets["green"])
    time.sleep(3 * INTERVAL)
    _, metrics = d.get("/metrics")
    applied = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('multinet_network_changes_total{result="applied"}')
    )
    # At most one reconcile per interval, whatever the 61 changes: not one per change.
    assert applied <= elapsed / INTERVAL + 3, (applied, elapsed)
    assert applied < 30
    c.finish(pod, other)


def delegate_request(
    env: dict[str, str], config: dict[str, Any], attributes: dict[str, Any]
) -> bytes:
    """The body multus-dynamic-networks-controller POSTs to multus-daemon's /delegate."""
    return json.dumps(
        {
            "env": env,
            "config": base64.b64encode(json.dumps(config).encode()).decode(),
            "interfaceAttributes": attributes,
        }
    ).encode()


def test_the_upstream_controllers_delegate_requests(sandbox: Sandbox, cluster: Cluster) -> None:
    c = cluster
    c.daemon(socketDir=str(sandbox.run / "multus"))
    sock = str(sandbox.run / "multus" / "multus.sock")
    pod = c.running()
    nad = json.loads(c.kubeapi.get_nad("default", "static")["spec"]["config"])
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": pod.cid,
        "CNI_NETNS": pod.netns,
        "CNI_IFNAME": "pod1f2e3d4c5",
        "CNI_ARGS": pod.args,
        "CNI_PATH": "/usr/lib/cni",
    }
    attributes = {"ips": ["10.253.7.7/24"], "mac": "02:11:22:33:44:55"}
    status, body = shim.request(
        sock, "POST", "/delegate", delegate_request(env, nad, attributes), timeout=60
    )
    assert status == 200, body
    result = json.loads(body)["Result"]
    assert result["cniVersion"] == "1.0.0"
    assert [ip["address"] for ip in result["ips"]] == ["10.253.7.7/24"]
    assert c.links(pod) == ["eth0", "pod1f2e3d4c5"]
    assert c.addresses(pod, "pod1f2e3d4c5") == ["10.253.7.7/24"]
    ns = pod.netns.rsplit("/", 1)[-1]
    (link,) = ip_json("-n", ns, "link", "show", "dev", "pod1f2e3d4c5")
    assert link["address"] == "02:11:22:33:44:55"

    # Another container's: refused, as the error text multus-daemon's clients read.
    status, body = shim.request(
        sock,
        "POST",
        "/delegate",
        delegate_request({**env, "CNI_CONTAINERID": "nosuch"}, nad, {}),
        timeout=60,
    )
    assert status == 400 and b"nosuch" in body

    # CHECK and DEL through /delegate: empty 200s; the interface goes.
    for command in ("CHECK", "DEL"):
        status, body = shim.request(
            sock,
            "POST",
            "/delegate",
            delegate_request({**env, "CNI_COMMAND": command}, nad, {}),
            timeout=60,
        )
        assert (status, body) == (200, b""), body
    assert c.links(pod) == ["eth0"]

    # A DEL of an interface multinet has no record of runs the given config's DEL.
    slow = json.loads(c.kubeapi.get_nad("default", "slow")["spec"]["config"])
    other = {**env, "CNI_COMMAND": "DEL", "CNI_IFNAME": "other0"}
    status, body = shim.request(
        sock, "POST", "/delegate", delegate_request(other, slow, {}), timeout=60
    )
    assert (status, body) == (200, b"")
    assert [call.split()[:3] for call in sandbox.calls()] == [["DEL", pod.cid, "other0"]]

    # Added again, then the sandbox's DEL removes it too: it is in the sandbox's journal.
    status, body = shim.request(
        sock, "POST", "/delegate", delegate_request(env, nad, attributes), timeout=60
    )
    assert status == 200, body
    c.finish(pod)
    assert (
        subprocess.run(["ip", "link", "show", "pod1f2e3d4c5"], capture_output=True).returncode != 0
    )


def test_a_new_network_that_fails_is_rolled_back_alone_and_reported(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    c.nad("default", "broken", {"cniVersion": "1.0.0", "name": "broken", "type": "mnd-nosuch"})
    c.daemon()
    pod = c.running()
    c.annotate(pod, "broken, blue")
    c.wait_status(pod, [("kube-system/cluster", "eth0"), ("default/blue", "net2")])
    sandbox.wait_for(
        lambda: any(
            t == "Warning" and r == "FailedNetworkChange" and "net1 from default/broken" in m
            for t, r, m in c.events(pod)
        )
    )
    assert c.links(pod) == ["eth0", "net2"]
    c.finish(pod)


def test_a_change_made_while_the_watch_was_broken_is_caught_by_the_relist(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    c.daemon()
    pod = c.running()
    c.kubeapi.set_down(True)  # the watches are cut
    c.annotate(pod, "blue")
    c.kubeapi.compact()  # the daemon's resourceVersion is gone: it must list again
    c.kubeapi.set_down(False)
    c.wait_links(pod, ["eth0", "net1"])
    c.wait_status(pod, [("kube-system/cluster", "eth0"), ("default/blue", "net1")])
    c.finish(pod)


def test_a_change_made_while_the_sandboxs_add_runs_is_applied_after_it(
    sandbox: Sandbox, cluster: Cluster
) -> None:
    c = cluster
    c.daemon()
    pod = c.pod("slow")
    sandbox.block("ADD")
    adding = threading.Thread(target=c.add, args=(pod,))
    adding.start()
    sandbox.wait_for(
        lambda: any(call.startswith(f"ADD {pod.cid} net1") for call in sandbox.calls())
    )
    c.annotate(pod, "slow, blue")  # the ADD planned from "slow"
    time.sleep(3 * INTERVAL)
    sandbox.unblock()
    adding.join(timeout=60)
    c.wait_status(
        pod, [("kube-system/cluster", "eth0"), ("default/slow", "net1"), ("default/blue", "net2")]
    )
    assert c.links(pod) == ["eth0", "net2"]  # mndtest makes no interface
    c.finish(pod)
