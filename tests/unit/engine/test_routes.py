"""default-route: which routes move (from the plan) and how the cluster result loses them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from multinet.cni.chain import load
from multinet.cni.version import SUPPORTED
from multinet.engine.plan import Plan, static_plan
from multinet.engine.routes import moves, without_default_routes
from multinet.networks.attachments import build
from multinet.networks.resolve import Resolved
from multinet.networks.selection import parse_networks


def plan_for(elements: list[dict[str, Any]]) -> Plan:
    def resolved(name: str) -> Resolved:
        return Resolved(name, load({"cniVersion": "1.0.0", "name": name, "type": "bridge"}))

    sels = parse_networks(json.dumps(elements), "pods")
    return build(
        resolved("cluster"),
        [resolved("default-1")],
        [(s, resolved(f"{s.namespace}/{s.name}")) for s in sels],
        ifname="eth0",
        runtime_config={},
    )


def test_moves_name_family_gateway_and_interface() -> None:
    plan = plan_for(
        [
            {"name": "a"},
            {"name": "b", "interface": "data0", "default-route": ["10.1.0.1"]},
            {"name": "c", "default-route": ["2001:db8::1"]},
        ]
    )
    assert moves(plan) == [(4, "10.1.0.1", "data0"), (6, "2001:db8::1", "net4")]


def test_one_network_may_take_both_default_routes() -> None:
    plan = plan_for([{"name": "a", "default-route": ["fd00::1", "192.168.0.1"]}])
    assert moves(plan) == [(6, "fd00::1", "net2"), (4, "192.168.0.1", "net2")]


def test_no_moves_without_default_route() -> None:
    assert moves(plan_for([{"name": "a"}, {"name": "b"}])) == []
    net = load({"cniVersion": "1.0.0", "name": "x", "type": "bridge"})
    assert moves(static_plan((net, net), "eth0", {})) == []


def result(version: str) -> dict[str, Any]:
    return {
        "cniVersion": version,
        "interfaces": [{"name": "eth0", "sandbox": "/ns"}],
        "ips": [{"address": "10.0.0.5/24", "interface": 0, "gateway": "10.0.0.1"}],
        "routes": [
            {"dst": "0.0.0.0/0", "gw": "10.0.0.1"},
            {"dst": "10.96.0.0/12", "gw": "10.0.0.1"},
            {"dst": "::/0", "gw": "fd00::1"},
            {"dst": "0.0.0.0/0", "gw": "10.0.0.2"},
            {"dst": "fd01::/64"},
        ],
        "dns": {"nameservers": ["10.96.0.10"]},
    }


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize(
    ("families", "kept"),
    [
        ({4}, ["10.96.0.0/12", "::/0", "fd01::/64"]),
        ({6}, ["0.0.0.0/0", "10.96.0.0/12", "0.0.0.0/0", "fd01::/64"]),
        ({4, 6}, ["10.96.0.0/12", "fd01::/64"]),
        (set(), ["0.0.0.0/0", "10.96.0.0/12", "::/0", "0.0.0.0/0", "fd01::/64"]),
    ],
)
def test_without_default_routes(version: str, families: set[int], kept: list[str]) -> None:
    raw = result(version)
    before = copy.deepcopy(raw)
    out = without_default_routes(raw, families)
    assert [r["dst"] for r in out["routes"]] == kept
    assert {k: v for k, v in out.items() if k != "routes"} == {
        k: v for k, v in before.items() if k != "routes"
    }
    assert raw == before  # the input is not modified


def test_without_default_routes_keeps_the_other_route_fields() -> None:
    raw = result("1.1.0")
    raw["routes"] = [
        {"dst": "0.0.0.0/0", "gw": "10.0.0.1", "priority": 100},
        {"dst": "10.0.0.0/8", "gw": "10.0.0.1", "mtu": 1400, "table": 100},
    ]
    out = without_default_routes(raw, {4})
    assert out["routes"] == [{"dst": "10.0.0.0/8", "gw": "10.0.0.1", "mtu": 1400, "table": 100}]


def test_without_default_routes_on_a_result_without_routes() -> None:
    raw = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5/24"}]}
    assert without_default_routes(raw, {4, 6}) == raw
    assert "routes" not in without_default_routes(raw, {4})
