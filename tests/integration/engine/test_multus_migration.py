"""Pods Multus attached, DELed by multinet after the switch: Multus's cache says what to remove.

The test plays Multus's part: it ADDs the cluster network and a secondary network with
the reference plugins straight into a pod's namespace (as Multus runs its delegates),
and writes Multus's cache of the container as Multus lays it out. The pod object is
gone: multinet's netconf names the cluster network only, so without Multus's cache the
secondary network's address would leak.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.conftest import REFERENCE_PLUGINS
from tests.support.multus import Delegate, cache_files, write_cache


def single(conflist: dict[str, Any]) -> dict[str, Any]:
    """A one-plugin conflist as a plain .conf (how a NAD or a .conf file often holds it)."""
    (plugin,) = conflist["plugins"]
    return {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **plugin}


def plugin_add(conf: dict[str, Any], container_id: str, netns: str, ifname: str) -> Any:
    """What Multus (through libcni) does for one delegate: run its plugin's ADD."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_PATH": str(REFERENCE_PLUGINS),
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=gone",
    }
    proc = subprocess.run(
        [str(REFERENCE_PLUGINS / conf["type"])],
        input=json.dumps(conf),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_del_of_a_pod_multus_attached_releases_every_network(
    cni: Any, confs: Any, state: Any, netns: str, bridge_factory: Any, net: Any, leaks: Any
) -> None:
    cluster_bridge, blue_bridge = bridge_factory(), bridge_factory()
    cluster = confs.bridge_net("cluster", cluster_bridge, confs.subnet())
    blue = single(confs.bridge_net("blue", blue_bridge, confs.subnet(), routes=[]))
    cid = "4f2a0c9e1b7d"
    # Multus's ADD: the master plugin on eth0, the NAD on net1.
    delegates = [
        Delegate(cluster, ifname="eth0", result=plugin_add(single(cluster), cid, netns, "eth0")),
        Delegate(blue, "ns1/blue", ifname="net1", result=plugin_add(blue, cid, netns, "net1")),
    ]
    write_cache(state.cni_dir, cid, delegates, netns)
    assert sorted(net.links(netns)) == ["eth0", "net1"]
    assert len(leaks.allocations()) == 2

    conf = confs.multinet([cluster])  # the pod is gone: its secondary network is unknown
    outcome = cni("DEL", conf, netns=netns, container_id=cid)
    assert outcome.rc == 0, outcome.err

    assert net.links(netns) == {}
    assert cache_files(state.cni_dir, cid) == []
    leaks.assert_clean()
    # Multus's cache directory may hold other containers: only this one's files went.
    assert Path(state.cni_dir).is_dir()


def test_del_after_the_netns_is_gone_still_releases_the_addresses(
    cni: Any, confs: Any, state: Any, netns_factory: Any, bridge_factory: Any, net: Any, leaks: Any
) -> None:
    ns = netns_factory()
    cluster = confs.bridge_net("cluster", bridge_factory(), confs.subnet())
    blue = single(confs.bridge_net("blue", bridge_factory(), confs.subnet(), routes=[]))
    cid = "9c0ffee"
    write_cache(
        state.cni_dir,
        cid,
        [
            Delegate(cluster, ifname="eth0", result=plugin_add(single(cluster), cid, ns, "eth0")),
            Delegate(blue, "ns1/blue", ifname="net1", result=plugin_add(blue, cid, ns, "net1")),
        ],
        ns,
    )
    net.delete_netns(ns)  # the sandbox went first (a node reboot, a crashed runtime)
    outcome = cni("DEL", confs.multinet([cluster]), netns="", container_id=cid)
    assert outcome.rc == 0, outcome.err
    assert leaks.allocations() == {}
    assert cache_files(state.cni_dir, cid) == []
