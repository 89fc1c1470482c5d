"""DHCP IPAM as a secondary network: the real dhcp plugin, its daemon, dnsmasq in a netns.

- ADD without the DHCP client daemon fails at once with code 11, naming the socket and
  the network, and leaves nothing behind (the reference plugin alone hangs for seconds
  and leaks the macvlan).
- DEL with the daemon killed: the lease cannot be released, the interface is removed all
  the same and the DEL succeeds.
- The lease is released on DEL (dnsmasq's lease file forgets it).
- No DHCP server answering (the daemon up, dnsmasq stopped): the ADD fails after
  dhcpTimeout with code 11 saying so, and leaves nothing; once the server is back, the
  runtime's retry gets its lease. A daemon whose own retries end first: the same code,
  its "no more tries" kept in the message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.integration.matrix.conftest import DhcpLan

if TYPE_CHECKING:
    from tests.integration.conftest import LeakChecker, NetInfo
    from tests.integration.networks.conftest import K8s


def dhcp_nad(k8s: K8s, lan: DhcpLan | None, socket: str = "") -> None:
    ipam = lan.ipam() if lan else {"type": "dhcp", "daemonSocketPath": socket}
    config = {
        "cniVersion": "1.0.0",
        "type": "macvlan",
        "master": lan.master if lan else k8s.cluster_bridge,
        "mode": "bridge",
        "ipam": ipam,
    }
    k8s.source.add_nad("default", "dhcp", config)


def dhcp_pod(k8s: K8s, lan: DhcpLan, netns: str) -> tuple[str, str]:
    """A pod on the DHCP NAD, ADDed into `netns`: (pod, container ID)."""
    dhcp_nad(k8s, lan)
    pod, cid = k8s.pod("dhcp"), k8s.container_id()
    rc, out, err = k8s.add(pod, netns, cid)
    assert rc == 0, (out, err)
    return pod, cid


def test_add_without_the_dhcp_daemon_fails_at_once_with_code_11_and_leaves_nothing(
    k8s: K8s, netns: str, leaks: LeakChecker, tmp_path: object
) -> None:
    socket = f"{tmp_path}/no-daemon.sock"
    dhcp_nad(k8s, None, socket)
    pod = k8s.pod("dhcp")
    start = time.monotonic()
    rc, out, _ = k8s.add(pod, netns, k8s.container_id())
    elapsed = time.monotonic() - start
    assert rc != 0 and out["code"] == 11, out
    assert socket in out["msg"] and "default/dhcp" in out["msg"], out
    assert elapsed < 3, f"ADD took {elapsed:.1f}s: it must not wait for the plugin's timeout"
    leaks.assert_clean()


def test_del_with_the_dhcp_daemon_killed_removes_net1_and_succeeds(
    k8s: K8s, dhcp_lan: DhcpLan, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = dhcp_pod(k8s, dhcp_lan, netns)
    assert "net1" in net.links(netns)
    dhcp_lan.kill_daemon()
    rc, out, err = k8s.delete(pod, netns, cid)
    assert rc == 0, (out, err)
    assert "release skipped" in err + k8s.cni.log(), err  # type: ignore[attr-defined]
    assert "net1" not in net.links(netns)
    leaks.assert_clean(keep_links=dhcp_lan.keep())


def test_the_lease_is_released_on_del(
    k8s: K8s, dhcp_lan: DhcpLan, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = dhcp_pod(k8s, dhcp_lan, netns)
    mac = net.mac(netns, "net1").lower()
    assert mac in dhcp_lan.leases(), dhcp_lan.leases()
    (address,) = net.addresses(netns)["net1"]
    assert address.split("/")[0] == dhcp_lan.leases()[mac]
    rc, out, err = k8s.delete(pod, netns, cid)
    assert rc == 0, (out, err)
    assert mac not in dhcp_lan.wait_forgotten({mac})
    leaks.assert_clean(keep_links=dhcp_lan.keep())


BOUND = 6  # dhcpTimeout for the test (the default, 30 s, is tests/unit's)


def test_add_with_no_dhcp_server_answering_fails_after_dhcp_timeout_and_leaves_nothing(
    k8s: K8s,
    dhcp_lan: DhcpLan,
    netns_factory: Callable[[], str],
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    dhcp_lan.stop_server()
    dhcp_nad(k8s, dhcp_lan)
    pod = k8s.pod("dhcp")
    conf = k8s.netconf(dhcpTimeout=BOUND)
    netns, cid = netns_factory(), k8s.container_id()
    start = time.monotonic()
    rc, out, err = k8s.add(pod, netns, cid, conf=conf)
    elapsed = time.monotonic() - start
    assert rc != 0 and out["code"] == 11, (out, err)
    assert out["msg"] == (
        f"network 'default/dhcp' (net1): no DHCP server answered: no lease obtained within {BOUND}s"
    ), out
    assert out["details"].startswith(f"macvlan ADD timed out after {BOUND}s"), out
    assert dhcp_lan.socket in out["details"], out
    assert BOUND <= elapsed < BOUND + 8, f"ADD took {elapsed:.1f}s for a {BOUND}s bound"
    assert net.links(netns) == {}, "the failed ADD left an interface in the pod"
    assert k8s.delete(pod, netns, cid, conf=conf).rc == 0  # the runtime's DEL after it
    leaks.assert_clean(keep_links=dhcp_lan.keep())

    # The condition was transient: with the server back, the runtime's retry succeeds.
    dhcp_lan.start_server()
    netns, cid = netns_factory(), k8s.container_id()
    rc, out, err = k8s.add(pod, netns, cid, conf=conf)
    assert rc == 0, (out, err)
    # One lease: this pod's; the failed ADD's request got none, then or later.
    assert list(dhcp_lan.leases()) == [net.mac(netns, "net1").lower()], dhcp_lan.leases()
    assert k8s.delete(pod, netns, cid, conf=conf).rc == 0
    leaks.assert_clean(keep_links=dhcp_lan.keep())


def test_a_dhcp_daemon_giving_up_before_dhcp_timeout_is_reported_as_no_server_answered(
    k8s: K8s, dhcp_lan: DhcpLan, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    dhcp_lan.stop_server()
    dhcp_lan.kill_daemon()
    dhcp_lan.start_daemon("-timeout", "1s", "-resendmax", "1s")  # gives up in ~10 s
    dhcp_nad(k8s, dhcp_lan)
    pod = k8s.pod("dhcp")
    cid = k8s.container_id()
    start = time.monotonic()
    rc, out, err = k8s.add(pod, netns, cid)  # the default dhcpTimeout, 30 s
    elapsed = time.monotonic() - start
    assert rc != 0 and out["code"] == 11, (out, err)
    assert out["msg"] == (
        "network 'default/dhcp' (net1): no DHCP server answered: the DHCP daemon gave up: "
        "macvlan ADD failed: error calling DHCP.Allocate: no more tries"
    ), out
    assert elapsed < 30, f"the daemon's answer came after dhcpTimeout ({elapsed:.1f}s)"
    # The reference macvlan leaves net1 behind when its IPAM fails: multinet removes it.
    assert net.links(netns) == {}, "the failed ADD left an interface in the pod"
    assert k8s.delete(pod, netns, cid).rc == 0
    assert dhcp_lan.leases() == {}
    leaks.assert_clean(keep_links=dhcp_lan.keep())


@pytest.mark.thin_only  # ~70 s: once is enough (the daemon, not multinet, renews)
def test_a_short_lease_is_renewed(
    k8s: K8s, dhcp_lan: DhcpLan, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    """dnsmasq's shortest lease (2 minutes) is renewed by the daemon at half its time."""
    pod, cid = dhcp_pod(k8s, dhcp_lan, netns)
    mac = net.mac(netns, "net1").lower()
    first = dhcp_lan.expiries()[mac]
    deadline = time.monotonic() + 90
    while dhcp_lan.expiries().get(mac, first) <= first and time.monotonic() < deadline:
        time.sleep(1)
    assert dhcp_lan.expiries()[mac] > first, "the lease was not renewed"
    assert net.addresses(netns)["net1"], "net1 lost its address"
    rc, out, err = k8s.delete(pod, netns, cid)
    assert rc == 0, (out, err)
    leaks.assert_clean(keep_links=dhcp_lan.keep())
