"""multinet-ipam's config: whereabouts' keys read unchanged, static requests, what is
accepted and not done yet, and the message of every bad input; the pool names; the
plugin's answers that need no API server (VERSION, bad input as CNI error JSON)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from multinet.authoring import configcheck
from multinet.authoring.configcheck import WARNING
from multinet.cni.errors import InvalidConfig
from multinet.ipam import plugin
from multinet.ipam.config import load, static_requests
from multinet.ipam.pools import Owner, pool_name


def netconf(**ipam: Any) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "net-a", "ipam": {"type": "multinet-ipam", **ipam}}


def test_whereabouts_keys_make_ranges() -> None:
    conf = load(
        netconf(
            range="10.1.0.0/24",
            range_start="10.1.0.10",
            range_end="10.1.0.20",
            exclude=["10.1.0.16/30"],
            gateway="10.1.0.1",
            ipRanges=[{"range": "fd00:1::/64", "exclude": ["fd00:1::/120"]}],
            routes=[{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "10.9.0.0/16", "mtu": 1400}],
            network_name="blue",
            kubernetes={"kubeconfig": "/etc/kube.conf"},
            datastore="kubernetes",
            log_level="debug",
        )
    )
    v4, v6 = conf.ranges
    assert (v4.cidr, v4.first, v4.last, v4.excluded) == ("10.1.0.0/24", 10, 20, ((1, 1), (16, 19)))
    assert (v6.cidr, v6.first, v6.excluded, v6.gateway) == ("fd00:1::/64", 1, ((0, 255),), None)
    assert v4.gateway is not None and str(v4.gateway) == "10.1.0.1"
    assert (conf.network_name, conf.kubeconfig, conf.pending) == ("blue", "/etc/kube.conf", ())
    assert conf.routes[1].extra == (("mtu", 1400),)
    assert [pool_name(conf.network_name, r) for r in conf.ranges] == [
        "blue-10.1.0.0-24",
        "blue-fd00-1---64",
    ]


def test_static_requests_from_runtime_config_or_cni_args() -> None:
    conf = {**netconf(range="10.1.0.0/24"), "runtimeConfig": {"ips": ["10.1.0.7/24"]}}
    assert [str(a) for a in static_requests(conf, ())] == ["10.1.0.7"]
    args = (("K8S_POD_NAME", "p"), ("IP", "10.1.0.8,fd00::8"))
    assert [str(a) for a in static_requests(netconf(), args)] == ["10.1.0.8", "fd00::8"]
    with pytest.raises(InvalidConfig, match="requested IP 'nope' is not an address"):
        static_requests({"runtimeConfig": {"ips": ["nope"]}}, ())


def test_keys_not_acted_on_yet_are_reported_by_the_plugin_and_the_nad_check() -> None:
    ipam = {"range": "10.1.0.0/24", "node_slice_size": "/28", "enable_overlapping_ranges": True}
    conf = load(netconf(**ipam))
    assert [p.split(":")[0] for p in conf.pending] == [
        "enable_overlapping_ranges",
        "node_slice_size",
    ]
    assert "node slices are not implemented yet" in conf.pending[1]
    assert load(netconf(range="10.1.0.0/24", enable_overlapping_ranges=False)).pending == ()
    problems = configcheck.check_ipam({"type": "multinet-ipam", **ipam}, "ipam")
    assert {(p.path, p.severity) for p in problems} == {
        ("ipam.node_slice_size", WARNING),
        ("ipam.enable_overlapping_ranges", WARNING),
    }


def test_a_whereabouts_nad_checks_clean_with_only_its_type_changed() -> None:
    ipam = {"range": "10.199.0.0/24", "range_start": "10.199.0.10", "exclude": ["10.199.0.32/28"]}
    for type_name in ("whereabouts", "multinet-ipam"):
        config = {"cniVersion": "1.0.0", "name": "n", "type": "macvlan", "master": "eth0",
                  "ipam": {"type": type_name, **ipam}}  # fmt: skip
        assert configcheck.check_config(config) == []
    bad = {"type": "multinet-ipam", "range": "10.1.0.0/24", "range_start": "10.3.0.1"}
    assert [p.render() for p in configcheck.check_ipam(bad, "ipam")] == [
        "ipam.range_start: 10.3.0.1 is outside subnet 10.1.0.0/24"
    ]


@pytest.mark.parametrize(
    ("ipam", "message"),
    [
        ({}, "needs 'range' or 'ipRanges'"),
        ({"range": "10.1.0.0"}, "range must be a CIDR"),
        ({"range": "10.1.0.0/24", "exclude": "10.1.0.0/28"}, "exclude must be a list of strings"),
        ({"range": "10.1.0.0/24", "exclude": ["x/28"]}, "exclude[0]: 'x/28' is not a CIDR"),
        ({"range": "10.1.0.0/24", "gateway": "x"}, "gateway: 'x' is not an IP address"),
        ({"ipRanges": [{}]}, "ipRanges[0]: required key 'range' is missing"),
        ({"ipRanges": "10.1.0.0/24"}, "ipRanges must be a list"),
        ({"range": "10.1.0.0/24", "ipRanges": [{"range": "10.1.0.0/24"}]}, "given twice"),
        ({"range": "10.1.0.0/24", "datastore": "etcd"}, "datastore 'etcd' is not supported"),
        ({"range": "10.1.0.0/24", "routes": [{"gw": "10.1.0.1"}]}, "routes[0] must be an object"),
        ({"range": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0", "mtu": -1}]}, "mtu must be"),
        ({"range": "10.1.0.0/24", "kubernetes": "x"}, "kubernetes must be an object"),
        ({"range": "10.1.0.0/24", "network_name": 5}, "network_name must be a string"),
    ],
)
def test_bad_config_is_invalid_config_naming_the_key(ipam: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        load(netconf(**ipam))
    assert message in e.value.msg


def test_a_network_name_that_makes_no_object_name_is_refused() -> None:
    (rng,) = load(netconf(range="10.1.0.0/24")).ranges
    with pytest.raises(InvalidConfig, match="network_name 'Net_A' makes the pool name"):
        pool_name("Net_A", rng)


def test_owner_holds_only_its_own_attachment() -> None:
    owner = Owner("c1", "net1", pod="ns/p", pod_uid="u", network="n", node="node-1")
    assert owner.to_json() == {"containerID": "c1", "ifname": "net1", "podRef": "ns/p",
                               "podUID": "u", "network": "n", "node": "node-1"}  # fmt: skip
    assert owner.holds({"containerID": "c1", "ifname": "net1"})
    assert not owner.holds({"containerID": "c1", "ifname": "net2"})
    assert not owner.holds("c1")


def run(env: dict[str, str], stdin: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = plugin.run(env, json.dumps(stdin or {}).encode(), out)
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


def test_version_and_errors_are_cni_json() -> None:
    code, answer = run({"CNI_COMMAND": "VERSION"})
    assert code == 0 and "0.3.0" in answer["supportedVersions"]
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/x", "CNI_IFNAME": "net1"}
    code, answer = run(env, netconf())
    assert (code, answer["code"]) == (1, 7)
    assert answer["msg"] == "multinet-ipam: needs 'range' or 'ipRanges'"
    code, answer = run(env, {**netconf(range="10.1.0.0/24"), "cniVersion": "0.2.0"})
    assert (code, answer["code"]) == (1, 7) and "cniVersion 0.2.0 is not supported" in answer["msg"]
    code, answer = run({**env, "CNI_COMMAND": "GC"}, {**netconf(range="10.1.0.0/24")})
    assert (code, answer["code"]) == (1, 1)  # GC needs 1.1.0
    code, answer = run({**env, "CNI_COMMAND": "STATUS"}, {**netconf(), "cniVersion": "1.1.0"})
    assert (code, answer) == (0, {})


def test_the_webhook_admits_a_multinet_ipam_nad_and_warns_of_what_is_not_done_yet() -> None:
    from multinet.webhook import review

    def answer(ipam: dict[str, Any]) -> dict[str, Any]:
        config = {"cniVersion": "1.0.0", "name": "lab", "type": "macvlan", "master": "eth0",
                  "ipam": {"type": "multinet-ipam", **ipam}}  # fmt: skip
        nad = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "lab", "namespace": "default"},
            "spec": {"config": json.dumps(config)},
        }
        body = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u1",
                "operation": "CREATE",
                "kind": {"group": "k8s.cni.cncf.io", "version": "v1",
                         "kind": "NetworkAttachmentDefinition"},
                "object": nad,
            },
        }  # fmt: skip
        response: dict[str, Any] = review.review(body)["response"]
        return response

    slices = answer({"range": "10.1.0.0/24", "node_slice_size": "/28"})
    assert slices["allowed"] is True
    assert slices["warnings"] == [
        "spec.config.ipam.node_slice_size: not yet: node slices are not implemented yet: "
        "every address "
        "comes from the pool through the API server"
    ]
    bad = answer({"range": "10.1.0.0/24", "range_end": "10.2.0.1"})
    assert bad["allowed"] is False
    assert "ipam.range_end: 10.2.0.1 is outside subnet 10.1.0.0/24" in bad["status"]["message"]
