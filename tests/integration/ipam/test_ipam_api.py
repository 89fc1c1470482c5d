"""multinet-ipam, the real executable, against the Kubernetes API test server: ADD,
CHECK, DEL and GC for every CNI version it speaks, static requests, conflicts retried,
many concurrent ADDs on one small pool (unique addresses, exhaustion reported, nothing
leaked), and DEL while the API server is away."""

from __future__ import annotations

import ipaddress

import pytest

from tests.integration.ipam.conftest import Ipam
from tests.support.kubeapi_faults import Status

POD_ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p1;K8S_POD_UID=uid-1"
TRY_AGAIN_LATER, INVALID_CONFIG, UNKNOWN_CONTAINER, POOL_EXHAUSTED = 11, 7, 3, 103


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_dual_stack_add_check_del(ipam: Ipam, version: str) -> None:
    conf = ipam.netconf(
        version,
        range="10.20.0.0/24",
        range_start="10.20.0.10",
        gateway="10.20.0.1",
        ipRanges=[{"range": "fd00:20::/64"}],
        routes=[{"dst": "0.0.0.0/0", "gw": "10.20.0.1"}],
        dns={"nameservers": ["10.20.0.53"]},
    )
    rc, out, err = ipam.run("ADD", conf, "c1", args=POD_ARGS)
    assert rc == 0, (out, err)
    assert out["cniVersion"] == version
    assert [(ip["address"], ip.get("gateway")) for ip in out["ips"]] == [
        ("10.20.0.10/24", "10.20.0.1"),
        ("fd00:20::1/64", None),
    ]
    if version < "1.0.0":
        assert [ip["version"] for ip in out["ips"]] == ["4", "6"]
    assert out["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.20.0.1"}]
    assert out["dns"] == {"nameservers": ["10.20.0.53"]}
    owner = {"containerID": "c1", "ifname": "net1", "podRef": "ns/p1", "podUID": "uid-1",
             "network": "net-a"}  # fmt: skip
    v4, v6 = ipam.pool("10.20.0.0-24"), ipam.pool("fd00-20---64")
    assert v4 is not None and v6 is not None
    assert list(v4) == ["10"] and list(v6) == ["1"]
    assert {k: v for k, v in v4["10"].items() if k != "node"} == owner
    assert ipam.notes() == ["c1-net1.json"]

    again = ipam.run("ADD", conf, "c1", args=POD_ARGS)  # a repeated ADD: the same addresses
    assert again.rc == 0 and again.out["ips"] == out["ips"]
    if version >= "0.4.0":
        assert ipam.run("CHECK", {**conf, "prevResult": out}, "c1").rc == 0

    assert ipam.run("DEL", conf, "c1").rc == 0
    assert ipam.allocated() == [] and ipam.notes() == []
    assert ipam.run("DEL", conf, "c1").rc == 0  # nothing left: DEL still succeeds
    if version >= "0.4.0":
        rc, out, _ = ipam.run("CHECK", {**conf, "prevResult": out}, "c1")
        assert (rc, out["code"]) == (1, UNKNOWN_CONTAINER)
        assert "pool 10.20.0.0-24 (10.20.0.0/24) holds no address for container c1" in out["msg"]


def test_attachments_get_distinct_addresses_and_share_a_pool_by_range(ipam: Ipam) -> None:
    a = ipam.netconf(range="10.21.0.0/29")
    b = ipam.netconf(name="net-b", range="10.21.0.0/29", exclude=["10.21.0.2/32"])
    other = ipam.netconf(name="net-c", range="10.21.0.0/29", network_name="isolated")
    got = [ipam.run("ADD", conf, cid).out["ips"][0]["address"]
           for conf, cid in ((a, "c1"), (b, "c2"), (a, "c3"), (other, "c4"))]  # fmt: skip
    assert got == ["10.21.0.1/29", "10.21.0.3/29", "10.21.0.2/29", "10.21.0.1/29"]
    assert sorted(ipam.pool("10.21.0.0-29") or {}) == ["1", "2", "3"]
    assert list(ipam.pool("isolated-10.21.0.0-29") or {}) == ["1"]
    ipam.server.reset_requests()
    assert ipam.run("ADD", a, "c5").rc == 0
    assert ipam.server.requests == [  # an existing pool, no conflict: two requests
        ("GET", "/apis/ipam.multinet.dev/v1alpha1/namespaces/kube-system/ippools/10.21.0.0-29"),
        ("PUT", "/apis/ipam.multinet.dev/v1alpha1/namespaces/kube-system/ippools/10.21.0.0-29"),
    ]


def test_static_requests_are_honoured_and_checked_against_the_pool(ipam: Ipam) -> None:
    conf = ipam.netconf(range="10.22.0.0/24", range_end="10.22.0.100", gateway="10.22.0.1")
    asked = {**conf, "runtimeConfig": {"ips": ["10.22.0.50/24"]}}
    rc, out, err = ipam.run("ADD", asked, "c1")
    assert rc == 0, (out, err)
    assert out["ips"][0]["address"] == "10.22.0.50/24"
    rc, out, _ = ipam.run("ADD", conf, "c2", args="IP=10.22.0.50")
    assert (rc, out["code"]) == (1, INVALID_CONFIG)
    assert out["msg"] == (
        "multinet-ipam: requested IP 10.22.0.50 of pool 10.22.0.0-24 is allocated already, "
        "to a pod (container c1, net1)"
    )
    for ip, says in (
        ("10.22.0.200", "is not in pool 10.22.0.0-24's range 10.22.0.1-10.22.0.100"),
        ("10.22.0.1", "(or is excluded, or the gateway)"),
        ("10.99.0.1", "requested IP 10.99.0.1 is in none of 10.22.0.0/24"),
    ):
        rc, out, _ = ipam.run("ADD", conf, "c3", args=f"IP={ip}")
        assert (rc, out["code"]) == (1, INVALID_CONFIG) and says in out["msg"], out
    assert [offset for _, offset, _ in ipam.allocated()] == ["50"]
    assert ipam.notes() == ["c1-net1.json"]  # the failed ADDs left no note


def test_conflicts_are_read_again_and_retried_then_try_again_later(ipam: Ipam) -> None:
    conf = ipam.netconf(range="10.23.0.0/24")
    assert ipam.run("ADD", conf, "c0").rc == 0  # the pool exists
    ipam.server.fail_next(3, 409, path_contains="ippools", method="PUT")
    ipam.server.reset_requests()
    rc, out, err = ipam.run("ADD", conf, "c1")
    assert rc == 0, (out, err)
    assert out["ips"][0]["address"] == "10.23.0.2/24"
    assert ipam.server.request_count("GET", "ippools/10.23.0.0-24") == 4
    assert ipam.server.request_count("PUT", "ippools/10.23.0.0-24") == 4

    ipam.server.fail_next(1000, 409, path_contains="ippools", method="PUT")
    rc, out, _ = ipam.run("ADD", conf, "c2")
    ipam.server.clear_faults()
    assert (rc, out["code"]) == (1, TRY_AGAIN_LATER)
    assert "IPPool kube-system/10.23.0.0-24: 25 writes in a row lost" in out["msg"]
    assert sorted(offset for _, offset, _ in ipam.allocated()) == ["1", "2"]


def test_many_concurrent_adds_on_a_small_pool(ipam: Ipam) -> None:
    """Twelve processes ADD at once on a pool of eight addresses: eight distinct addresses,
    four answered code 103 naming the pool; after every DEL, no allocation is left."""
    conf = ipam.netconf(range="10.24.0.0/28", range_end="10.24.0.8")
    procs = {f"c{i}": ipam.start("ADD", conf, f"c{i}") for i in range(12)}
    outcomes = {cid: ipam.outcome(p) for cid, p in procs.items()}
    won = {cid: o.out["ips"][0]["address"] for cid, o in outcomes.items() if o.rc == 0}
    lost = [o.out for o in outcomes.values() if o.rc != 0]
    assert len(won) == 8 and len(set(won.values())) == 8, outcomes
    assert {ipaddress.ip_interface(a).ip for a in won.values()} == {
        ipaddress.ip_address(f"10.24.0.{i}") for i in range(1, 9)
    }
    assert len(lost) == 4
    for error in lost:
        assert error["code"] == POOL_EXHAUSTED, error
        assert error["msg"] == (
            "multinet-ipam: pool kube-system/10.24.0.0-28 (10.24.0.1-10.24.0.8 of "
            "10.24.0.0/28) is exhausted: all 8 addresses are allocated"
        )
    pool = ipam.pool("10.24.0.0-28") or {}
    assert {o["containerID"]: f"10.24.0.{off}/28" for off, o in pool.items()} == won
    dels = [ipam.start("DEL", conf, cid) for cid in procs]
    assert all(ipam.outcome(p).rc == 0 for p in dels)
    assert ipam.allocated() == [] and ipam.notes() == []


def test_exhaustion_of_a_later_range_releases_the_earlier_ones(ipam: Ipam) -> None:
    conf = ipam.netconf(range="10.25.0.0/24", ipRanges=[{"range": "fd00:25::/127"}])
    assert ipam.run("ADD", conf, "c1").rc == 0
    rc, out, _ = ipam.run("ADD", conf, "c2")
    assert (rc, out["code"]) == (1, POOL_EXHAUSTED) and "fd00-25---127" in out["msg"]
    assert sorted((pool, o["containerID"]) for pool, _, o in ipam.allocated()) == [
        ("10.25.0.0-24", "c1"),
        ("fd00-25---127", "c1"),
    ]
    assert ipam.notes() == ["c1-net1.json"]


def test_del_while_the_api_server_is_away(ipam: Ipam) -> None:
    conf = ipam.netconf(range="10.26.0.0/24")
    assert ipam.run("ADD", conf, "c1").rc == 0
    ipam.server.set_down(True)
    try:
        # Allocated by this node (its note): code 11, the runtime retries.
        rc, out, _ = ipam.run("DEL", conf, "c1")
        assert (rc, out["code"]) == (1, TRY_AGAIN_LATER)
        assert "API server unreachable" in out["msg"]
        # Never allocated here: nothing to release, DEL succeeds without the API.
        rc, out, err = ipam.run("DEL", conf, "c2")
        assert (rc, out) == (0, None)
        assert "this node allocated nothing for it" in err
    finally:
        ipam.server.set_down(False)
    assert ipam.run("DEL", conf, "c1").rc == 0
    assert ipam.allocated() == [] and ipam.notes() == []


def test_gc_releases_this_networks_attachments_the_runtime_no_longer_has(ipam: Ipam) -> None:
    conf = ipam.netconf("1.1.0", range="10.27.0.0/24")
    other = ipam.netconf("1.1.0", name="net-b", range="10.27.0.0/24")
    for c, cid in ((conf, "c1"), (conf, "c2"), (other, "c3")):
        assert ipam.run("ADD", c, cid).rc == 0
    valid = {"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "net1"}]}
    rc, out, err = ipam.run("GC", {**conf, **valid}, "")
    assert rc == 0, (out, err)
    # c2 went; c3 is another network's, not this GC's to judge.
    assert sorted(o["containerID"] for _, _, o in ipam.allocated()) == ["c1", "c3"]


def test_keys_not_done_yet_are_said_on_stderr(ipam: Ipam) -> None:
    conf = ipam.netconf(range="10.28.0.0/24", node_slice_size="/28")
    rc, _, err = ipam.run("ADD", conf, "c1")
    assert rc == 0
    assert "node_slice_size: node slices are not implemented yet" in err


def test_a_whereabouts_ipam_works_with_only_its_type_changed(ipam: Ipam) -> None:
    """An ipam object as whereabouts' users write it, every key kept, `type` changed."""
    whereabouts = {
        "datastore": "kubernetes",
        "kubernetes": {"kubeconfig": ipam.kubeconfig},
        "range": "10.29.0.10-10.29.0.11/24",
        "exclude": ["10.29.0.10/32"],
        "gateway": "10.29.0.1",
        "log_file": "/tmp/whereabouts.log",
        "log_level": "debug",
        "leader_lease_duration": 1500,
        "leader_renew_deadline": 1000,
        "leader_retry_period": 500,
        "reconciler_cron_expression": "30 4 * * *",
    }
    conf = {**ipam.netconf(), "ipam": {"type": "multinet-ipam", "dataDir": str(ipam.data_dir),
                                       **whereabouts}}  # fmt: skip
    rc, out, err = ipam.run("ADD", conf, "c1")
    assert rc == 0, (out, err)
    assert out["ips"] == [{"address": "10.29.0.11/24", "gateway": "10.29.0.1"}]
    rc, out, _ = ipam.run("ADD", conf, "c2")
    assert (rc, out["code"]) == (1, POOL_EXHAUSTED) and "all 1 addresses" in out["msg"]
    assert ipam.run("DEL", conf, "c1").rc == 0 and ipam.allocated() == []


def test_credentials_and_rbac_failures_are_reported(ipam: Ipam) -> None:
    conf = ipam.netconf(range="10.31.0.0/24", kubernetes={"kubeconfig": "/nonexistent/kc"})
    rc, out, _ = ipam.run("ADD", conf, "c1")
    assert (rc, out["code"]) == (1, 101)
    assert out["msg"].startswith("cannot load kubeconfig /nonexistent/kc"), out
    assert ipam.notes() == []  # nothing allocated, no note left
    assert ipam.run("DEL", conf, "c1").rc == 0  # never allocated: DEL succeeds

    conf = ipam.netconf(range="10.31.0.0/24")
    ipam.server.inject(Status(403), path_contains="ippools")
    try:
        rc, out, _ = ipam.run("ADD", conf, "c1")
    finally:
        ipam.server.clear_faults()
    assert (rc, out["code"]) == (1, 101)
    assert "API server refused access (403 Forbidden)" in out["msg"]
    assert "RBAC" in out["msg"] and "ippools" in out["details"]
