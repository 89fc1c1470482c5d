"""engine.dhcp: which DHCP daemon sockets a plan needs, and the check before an ADD."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from multinet.cni import errors
from multinet.cni.chain import NetworkConfig
from multinet.config.netconf import DHCP_TIMEOUT, NetConf, load
from multinet.engine import dhcp
from multinet.engine.plan import Attachment, Plan


def net(name: str, *plugins: dict[str, Any]) -> NetworkConfig:
    return NetworkConfig(name=name, cni_version="1.0.0", plugins=tuple(plugins))


def macvlan(ipam: dict[str, Any]) -> dict[str, Any]:
    return {"type": "macvlan", "master": "eth0", "ipam": ipam}


def plan(*nets: NetworkConfig) -> Plan:
    return Plan(
        tuple(
            Attachment(name=f"ns/{n.name}", network=n, ifname=f"net{i}", default=i == 0)
            for i, n in enumerate(nets)
        )
    )


def test_only_dhcp_ipam_needs_a_socket_with_the_upstream_default() -> None:
    p = plan(
        net("cluster", {"type": "bridge", "ipam": {"type": "host-local"}}),
        net("d1", macvlan({"type": "dhcp"})),
        net("d2", macvlan({"type": "dhcp", "daemonSocketPath": "/tmp/x.sock"})),
        net("static", macvlan({"type": "static"}), {"type": "tuning"}),
    )
    assert dhcp.sockets_needed(p) == [
        dhcp.Need("ns/d1", "/run/cni/dhcp.sock"),
        dhcp.Need("ns/d2", "/tmp/x.sock"),
    ]


@pytest.mark.parametrize("ipam", [None, "dhcp", {"type": "host-local"}, {"daemonSocketPath": "/x"}])
def test_a_plugin_without_a_dhcp_ipam_object_needs_nothing(ipam: Any) -> None:
    assert dhcp.socket_of({"type": "macvlan", "ipam": ipam}) is None


def test_a_chain_names_each_socket_once() -> None:
    n = net("d", macvlan({"type": "dhcp"}), {"type": "x", "ipam": {"type": "dhcp"}})
    assert dhcp.network_sockets(n) == ["/run/cni/dhcp.sock"]


def test_check_probes_each_socket_once_and_names_the_networks_and_sockets() -> None:
    probed: list[str] = []

    def probe(path: str) -> str | None:
        probed.append(path)
        return None if path == "/ok.sock" else "No such file or directory"

    p = plan(
        net("cluster", {"type": "bridge"}),
        net("a", macvlan({"type": "dhcp", "daemonSocketPath": "/down.sock"})),
        net("b", macvlan({"type": "dhcp", "daemonSocketPath": "/down.sock"})),
        net("c", macvlan({"type": "dhcp", "daemonSocketPath": "/ok.sock"})),
    )
    with pytest.raises(errors.TryAgainLater) as e:
        dhcp.check(p, probe)
    assert e.value.code == errors.TRY_AGAIN_LATER == 11
    assert "'ns/a' needs /down.sock" in e.value.msg and "'ns/b'" in e.value.msg
    assert "ns/c" not in e.value.msg
    assert probed == ["/down.sock", "/ok.sock"]


def test_check_of_a_plan_without_dhcp_probes_nothing() -> None:
    def probe(path: str) -> str | None:
        raise AssertionError(path)

    dhcp.check(plan(net("cluster", {"type": "bridge"})), probe)


@pytest.fixture
def sock_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        yield d


def test_probe_of_a_listening_socket_a_missing_one_and_a_dead_one(sock_dir: str) -> None:
    live = os.path.join(sock_dir, "live.sock")
    dead = os.path.join(sock_dir, "dead.sock")
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(live)
        srv.listen(1)
        assert dhcp.probe(live) is None
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(dead)  # the file of a daemon that died: nobody listens
    start = time.monotonic()
    assert dhcp.probe(dead) is not None
    assert dhcp.probe(os.path.join(sock_dir, "missing.sock")) is not None
    assert time.monotonic() - start < 1


def test_with_a_host_root_the_socket_is_probed_under_it() -> None:
    probed: list[str] = []

    def probe(path: str) -> str | None:
        probed.append(path)
        return None

    dhcp.check(plan(net("d", macvlan({"type": "dhcp"}))), probe, root="/hostroot")
    assert probed == ["/hostroot/run/cni/dhcp.sock"]
    assert dhcp.in_root("/run/x.sock", "/") == "/run/x.sock"


def multinet(**keys: Any) -> NetConf:
    return load(
        {"cniVersion": "1.0.0", "name": "m", "type": "multinet", "clusterNetwork": "c", **keys}
    )


def test_bound_is_dhcp_timeout_for_a_dhcp_network_only() -> None:
    conf = multinet()
    assert conf.dhcp_timeout == DHCP_TIMEOUT == 30
    p = plan(net("cluster", {"type": "bridge"}), net("d", macvlan({"type": "dhcp"})))
    assert dhcp.bound(conf, p.attachments[0]) is None
    b = dhcp.bound(multinet(dhcpTimeout=7), p.attachments[1])
    assert b is not None and b.seconds == 7


def test_reaching_the_bound_is_try_again_later_saying_no_dhcp_server_answered() -> None:
    conf = multinet(dhcpTimeout=7)
    att = plan(net("d", macvlan({"type": "dhcp", "daemonSocketPath": "/d.sock"}))).attachments[0]
    b = dhcp.bound(conf, att)
    assert b is not None
    e = b.reached(errors.DelegateTimedOut("macvlan ADD timed out after 7s"), 7)
    assert e.code == errors.TRY_AGAIN_LATER
    assert e.msg == "no DHCP server answered: no lease obtained within 7s"
    assert e.details.startswith("macvlan ADD timed out after 7s (dhcpTimeout 7s, ")
    assert "/d.sock" in e.details


def test_the_daemon_giving_up_is_try_again_later_keeping_its_message() -> None:
    att = plan(net("d", macvlan({"type": "dhcp"}))).attachments[0]
    b = dhcp.bound(multinet(), att)
    assert b is not None
    gave_up = errors.DelegateError(
        "macvlan ADD failed: error calling DHCP.Allocate: no more tries",
        "the plugin answered code 999",
    )
    e = b.explain(gave_up)
    assert e.code == errors.TRY_AGAIN_LATER
    assert e.msg == (
        "no DHCP server answered: the DHCP daemon gave up: "
        "macvlan ADD failed: error calling DHCP.Allocate: no more tries"
    )
    assert e.details.startswith("the plugin answered code 999; the DHCP client daemon on ")


@pytest.mark.parametrize(
    "error",
    [
        errors.DelegateError("macvlan ADD failed: error calling DHCP.Allocate: link not found"),
        errors.DelegateError("macvlan ADD failed: no more tries at something else"),
        errors.InvalidConfig("DHCP.Allocate: no more tries"),
    ],
)
def test_other_failures_of_a_dhcp_network_are_reported_as_they_are(error: errors.CNIError) -> None:
    att = plan(net("d", macvlan({"type": "dhcp"}))).attachments[0]
    b = dhcp.bound(multinet(), att)
    assert b is not None and b.explain(error) is error
