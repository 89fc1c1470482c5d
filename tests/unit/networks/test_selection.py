"""The networks / default-network annotations in both forms, and interface-name rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from multinet.cni.errors import InvalidConfig
from multinet.cni.ifname import validate_ifname
from multinet.networks.selection import (
    KEYS,
    NetworkSelection,
    parse_default_network,
    parse_networks,
)

NAME_RULE = "does not match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def brief(selections: list[NetworkSelection]) -> list[tuple[str, str, str | None]]:
    return [(s.namespace, s.name, s.interface) for s in selections]


# -- text form -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("   ", []),
        ("macvlan-conf", [("pods", "macvlan-conf", None)]),
        ("other/macvlan-conf", [("other", "macvlan-conf", None)]),
        ("macvlan-conf@net5", [("pods", "macvlan-conf", "net5")]),
        ("other/macvlan-conf@data0", [("other", "macvlan-conf", "data0")]),
        (
            "a,b/c, d@eth1 ,e/f@eth2",
            [("pods", "a", None), ("b", "c", None), ("pods", "d", "eth1"), ("e", "f", "eth2")],
        ),
        (" ns / net1 @ if1 ", [("ns", "net1", "if1")]),
        ("a,a", [("pods", "a", None), ("pods", "a", None)]),
        ("0", [("pods", "0", None)]),
    ],
)
def test_text_form(value: str, expected: list[tuple[str, str, str | None]]) -> None:
    assert brief(parse_networks(value, "pods")) == expected


def test_text_form_raw_is_json_equivalent() -> None:
    [plain, full] = parse_networks("a, ns/b@eth1", "pods")
    assert plain.raw == {"name": "a"}
    assert full.raw == {"name": "b", "namespace": "ns", "interface": "eth1"}
    assert full == NetworkSelection(name="b", namespace="ns", interface="eth1", raw=full.raw)


# -- JSON form -------------------------------------------------------------------------------

EVERY_FIELD: dict[str, Any] = {
    "name": "sriov-net",
    "namespace": "infra",
    "interface": "fast0",
    "ips": ["10.10.0.5/24", "fd00:10::5"],
    "mac": "0a:58:0a:0a:00:05",
    "infiniband-guid": "c2:11:22:33:44:55:66:77",
    "default-route": ["10.10.0.1", "fd00:10::1"],
    "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
    "bandwidth": {"ingressRate": 1000000, "ingressBurst": 2000000},
    "cni-args": {"vlan": 100, "trust": "on"},
    "deviceID": "0000:3b:02.1",
    "source-routing": True,
    "ipam-claim-reference": "vm-a.net1",  # known, and ignored (no field of its own)
    "x-unknown": "ignored",
}


def test_json_every_field() -> None:
    [s] = parse_networks(json.dumps([EVERY_FIELD]), "pods")
    assert s == NetworkSelection(
        name="sriov-net",
        namespace="infra",
        interface="fast0",
        ips=["10.10.0.5/24", "fd00:10::5"],
        mac="0a:58:0a:0a:00:05",
        infiniband_guid="c2:11:22:33:44:55:66:77",
        default_route=["10.10.0.1", "fd00:10::1"],
        port_mappings=[{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        bandwidth={"ingressRate": 1000000, "ingressBurst": 2000000},
        cni_args={"vlan": 100, "trust": "on"},
        device_id="0000:3b:02.1",
        source_routing=True,
        raw=EVERY_FIELD,
        unknown_keys=[s.unknown_keys[0]],
    )
    assert s.unknown_keys[0].endswith(': unknown key "x-unknown": ADD ignores it')
    assert set(EVERY_FIELD) - {"x-unknown", "interfaceRequest"} <= set(KEYS)
    assert set(KEYS) - set(EVERY_FIELD) == {"interfaceRequest"}


def test_an_unknown_key_is_named_with_the_closest_known_one() -> None:
    value = '[{"name": "a", "interfce": "net5"}, {"name": "b", "Interface": "x"}]'
    [a, b] = parse_networks(value, "pods")
    assert a.interface is None  # ignored
    assert a.unknown_keys == [
        'networks annotation element 1 {"name": "a", "interfce": "net5"}: unknown key '
        '"interfce" (did you mean "interface"?): ADD ignores it'
    ]
    assert b.unknown_keys == [
        'networks annotation element 2 {"name": "b", "Interface": "x"}: unknown key '
        '"Interface" (did you mean "interface"?): ADD ignores it'
    ]
    assert parse_networks("a@net1", "pods")[0].unknown_keys == []


def test_json_minimal_and_defaults() -> None:
    [s] = parse_networks(' [ {"name": "br"} ] ', "pods")
    assert s == NetworkSelection(name="br", namespace="pods", raw={"name": "br"})
    assert s.ips == [] and s.default_route == [] and s.port_mappings is None


def test_json_null_and_empty_mean_not_given() -> None:
    # What templating tools produce; Multus reads them as Go zero values.
    value = json.dumps(
        [
            {
                "name": "br",
                "namespace": "",
                "interface": "",
                "mac": None,
                "ips": None,
                "deviceID": "",
                "bandwidth": None,
                "cni-args": None,
                "source-routing": None,  # was refused ("got null null"): Go reads it as false
            }
        ]
    )
    [s] = parse_networks(value, "pods")
    assert s.source_routing is False and s.unknown_keys == []
    assert (s.namespace, s.interface, s.mac, s.ips, s.device_id, s.bandwidth, s.cni_args) == (
        "pods",
        None,
        None,
        [],
        None,
        None,
        None,
    )


def test_json_keeps_order_and_accepts_empty_list() -> None:
    value = '[{"name": "a"}, {"name": "b", "namespace": "x"}, {"name": "c", "interface": "n9"}]'
    assert brief(parse_networks(value, "pods")) == [
        ("pods", "a", None),
        ("x", "b", None),
        ("pods", "c", "n9"),
    ]
    assert parse_networks("[]", "pods") == []


@pytest.mark.parametrize(
    "mac", ["0a:58:0a:0a:00:05", "0A:58:0A:0A:00:05", "0a-58-0a-0a-00-05", "ff:ff:ff:ff:ff:ff"]
)
def test_mac_forms(mac: str) -> None:
    [s] = parse_networks(json.dumps([{"name": "n", "mac": mac}]), "pods")
    assert s.mac == mac


# -- malformed -------------------------------------------------------------------------------

P = "networks annotation"

MALFORMED = [
    # text form
    ("a,,b", f'{P} element 2 "": empty element (stray comma?)'),
    ("a,", f'{P} element 2 "": empty element (stray comma?)'),
    ("/net", f'{P} element 1 "/net": empty namespace before "/"'),
    ("net@", f'{P} element 1 "net@": empty interface after "@"'),
    ("ns/", f'{P} element 1 "ns/": name "" {NAME_RULE}'),
    ("@eth1", f'{P} element 1 "@eth1": name "" {NAME_RULE}'),
    (
        "a/b/c",
        f'{P} element 1 "a/b/c": more than one "/"; expected [namespace/]name[@interface]',
    ),
    (
        "a@b@c",
        f'{P} element 1 "a@b@c": more than one "@"; expected [namespace/]name[@interface]',
    ),
    (
        "net@eth/0",
        f'{P} element 1 "net@eth/0": "@" before "/"; expected [namespace/]name[@interface]',
    ),
    ("ok,Bad_Name", f'{P} element 2 "Bad_Name": name "Bad_Name" {NAME_RULE}'),
    ("Ns/net", f'{P} element 1 "Ns/net": namespace "Ns" {NAME_RULE}'),
    ("net-", f'{P} element 1 "net-": name "net-" {NAME_RULE}'),
    ("net@eth 1", f'{P} element 1 "net@eth 1": interface "eth 1" is invalid: contains whitespace'),
    (
        "net@a-very-long-name",
        f'{P} element 1 "net@a-very-long-name": interface "a-very-long-name" is invalid: '
        "longer than 15 bytes",
    ),
    ("net@..", f'{P} element 1 "net@..": interface ".." is invalid: "." and ".." are not allowed'),
    # JSON structure
    (
        '[{"name": "x",}]',
        f"{P}: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 15 (char 14)",
    ),
    ('"net"', f'{P}: expected a JSON list of objects, got string "net"'),
    ('{"name": "x"}', f'{P}: expected a JSON list of objects, got object {{"name": "x"}}'),
    ('["x"]', f'{P} element 1 "x": expected a JSON object, got string'),
    ('[{"name": "a"}, 3]', f"{P} element 2 3: expected a JSON object, got number"),
    ('[{"name": "a"}, null]', f"{P} element 2 null: expected a JSON object, got null"),
    # name / namespace / interface
    ('[{"namespace": "x"}]', f'{P} element 1 {{"namespace": "x"}}: name is required'),
    ('[{"name": null}]', f'{P} element 1 {{"name": null}}: name is required'),
    ('[{"name": 5}]', f'{P} element 1 {{"name": 5}}: name must be a string, got number 5'),
    (
        '[{"name": "ok"}, {"name": "Bad_Name"}]',
        f'{P} element 2 {{"name": "Bad_Name"}}: name "Bad_Name" {NAME_RULE}',
    ),
    ('[{"name": "a.b"}]', f'{P} element 1 {{"name": "a.b"}}: name "a.b" {NAME_RULE}'),
    ('[{"name": "x\\n"}]', f'{P} element 1 {{"name": "x\\n"}}: name "x\\n" {NAME_RULE}'),
    (
        '[{"name": "x", "namespace": "-ns"}]',
        f'{P} element 1 {{"name": "x", "namespace": "-ns"}}: namespace "-ns" {NAME_RULE}',
    ),
    (
        json.dumps([{"name": "x", "namespace": "n" * 64}]),
        f'{P} element 1 {{"name": "x", "namespace": "{"n" * 64}"}}: '
        f'namespace "{"n" * 64}" is longer than 63 characters',
    ),
    (
        '[{"name": "x", "namespace": ["a"]}]',
        f'{P} element 1 {{"name": "x", "namespace": ["a"]}}: '
        'namespace must be a string, got list ["a"]',
    ),
    (
        '[{"name": "x", "interface": "net/1"}]',
        f'{P} element 1 {{"name": "x", "interface": "net/1"}}: '
        'interface "net/1" is invalid: contains "/"',
    ),
    (
        '[{"name": "x", "interface": "net:1"}]',
        f'{P} element 1 {{"name": "x", "interface": "net:1"}}: '
        'interface "net:1" is invalid: contains ":"',
    ),
    (
        '[{"name": "x", "interface": 1}]',
        f'{P} element 1 {{"name": "x", "interface": 1}}: interface must be a string, got number 1',
    ),
    # ips / default-route
    (
        '[{"name": "x", "ips": "10.0.0.1"}]',
        f'{P} element 1 {{"name": "x", "ips": "10.0.0.1"}}: '
        'ips must be a list, got string "10.0.0.1"',
    ),
    (
        '[{"name": "x", "ips": ["10.0.0.1/24", "10.0.0.1/33"]}]',
        f'{P} element 1 {{"name": "x", "ips": ["10.0.0.1/24", "10.0.0.1/33"]}}: '
        'ips[1] "10.0.0.1/33" is not an IP address or CIDR',
    ),
    (
        '[{"name": "x", "ips": ["10.0.0.256"]}]',
        f'{P} element 1 {{"name": "x", "ips": ["10.0.0.256"]}}: '
        'ips[0] "10.0.0.256" is not an IP address or CIDR',
    ),
    (
        '[{"name": "x", "ips": [1]}]',
        f'{P} element 1 {{"name": "x", "ips": [1]}}: ips[0] 1 is not an IP address or CIDR',
    ),
    (
        '[{"name": "x", "default-route": ["10.0.0.1/24"]}]',
        f'{P} element 1 {{"name": "x", "default-route": ["10.0.0.1/24"]}}: '
        'default-route[0] "10.0.0.1/24" is not an IP address',
    ),
    (
        '[{"name": "x", "default-route": "10.0.0.1"}]',
        f'{P} element 1 {{"name": "x", "default-route": "10.0.0.1"}}: '
        'default-route must be a list, got string "10.0.0.1"',
    ),
    # mac / infiniband-guid
    (
        '[{"name": "x", "mac": "0a:58:0a:0a:00"}]',
        f'{P} element 1 {{"name": "x", "mac": "0a:58:0a:0a:00"}}: '
        'mac "0a:58:0a:0a:00" is not a MAC address like 0a:58:0a:01:00:05 '
        "(6, 8 or 20 bytes, ':'- or '-'-separated, or dotted groups of 4 hex digits)",
    ),
    (
        '[{"name": "x", "mac": "0a:58-0a:0a:00:05"}]',
        f'{P} element 1 {{"name": "x", "mac": "0a:58-0a:0a:00:05"}}: '
        'mac "0a:58-0a:0a:00:05" is not a MAC address like 0a:58:0a:01:00:05 '
        "(6, 8 or 20 bytes, ':'- or '-'-separated, or dotted groups of 4 hex digits)",
    ),
    (
        '[{"name": "x", "mac": "0g:58:0a:0a:00:05"}]',
        f'{P} element 1 {{"name": "x", "mac": "0g:58:0a:0a:00:05"}}: '
        'mac "0g:58:0a:0a:00:05" is not a MAC address like 0a:58:0a:01:00:05 '
        "(6, 8 or 20 bytes, ':'- or '-'-separated, or dotted groups of 4 hex digits)",
    ),
    (
        '[{"name": "x", "infiniband-guid": "c2:11:22:33:44:55:66"}]',
        f'{P} element 1 {{"name": "x", "infiniband-guid": "c2:11:22:33:44:55:66"}}: '
        'infiniband-guid "c2:11:22:33:44:55:66" is not 8 colon-separated hex bytes',
    ),
    # objects and lists of objects
    (
        '[{"name": "x", "portMappings": {"hostPort": 80}}]',
        f'{P} element 1 {{"name": "x", "portMappings": {{"hostPort": 80}}}}: '
        'portMappings must be a list of objects, got {"hostPort": 80}',
    ),
    (
        '[{"name": "x", "portMappings": [{"hostPort": 80}, 1]}]',
        f'{P} element 1 {{"name": "x", "portMappings": [{{"hostPort": 80}}, 1]}}: '
        'portMappings must be a list of objects, got [{"hostPort": 80}, 1]',
    ),
    (
        '[{"name": "x", "bandwidth": [1]}]',
        f'{P} element 1 {{"name": "x", "bandwidth": [1]}}: '
        "bandwidth must be an object, got list [1]",
    ),
    (
        '[{"name": "x", "cni-args": "vlan=1"}]',
        f'{P} element 1 {{"name": "x", "cni-args": "vlan=1"}}: '
        'cni-args must be an object, got string "vlan=1"',
    ),
    (
        '[{"name": "x", "deviceID": 7}]',
        f'{P} element 1 {{"name": "x", "deviceID": 7}}: deviceID must be a string, got number 7',
    ),
    (
        '[{"name": "x", "deviceID": true}]',
        f'{P} element 1 {{"name": "x", "deviceID": true}}: '
        "deviceID must be a string, got boolean true",
    ),
]


@pytest.mark.parametrize(("value", "message"), MALFORMED)
def test_malformed(value: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_networks(value, "pods")
    assert info.value.msg == message
    assert info.value.code == 7


def test_long_element_is_shortened_in_message() -> None:
    element = {"name": "Bad", "cni-args": {"blob": "z" * 1000}}
    with pytest.raises(InvalidConfig) as info:
        parse_networks(json.dumps([element]), "pods")
    assert info.value.msg.startswith(f"{P} element 1 {json.dumps(element)[:297]}...: name")
    assert len(info.value.msg) < 400


# -- default-network -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cluster-net", ("multinet", "cluster-net", None)),
        ("infra/cluster-net", ("infra", "cluster-net", None)),
        ('[{"name": "cluster-net", "namespace": "infra"}]', ("infra", "cluster-net", None)),
        (
            ' [{"name": "cluster-net", "mac": "0a:00:00:00:00:01"}] ',
            ("multinet", "cluster-net", None),
        ),
    ],
)
def test_default_network(value: str, expected: tuple[str, str, str | None]) -> None:
    assert brief([parse_default_network(value, "multinet")]) == [expected]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", 'default-network annotation "": expected exactly one network, found 0'),
        ("[]", 'default-network annotation "[]": expected exactly one network, found 0'),
        ("a,b", 'default-network annotation "a,b": expected exactly one network, found 2'),
        (
            '[{"name": "a"}, {"name": "b"}]',
            'default-network annotation "[{\\"name\\": \\"a\\"}, {\\"name\\": \\"b\\"}]": '
            "expected exactly one network, found 2",
        ),
        ("Bad", f'default-network annotation element 1 "Bad": name "Bad" {NAME_RULE}'),
        ("{", "default-network annotation: not valid JSON: Expecting property name enclosed"),
    ],
)
def test_default_network_malformed(value: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_default_network(value, "multinet")
    assert info.value.msg.startswith(message)


# -- interface names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["eth0", "net1", "a", "x" * 15, "vlan.100", "e-1_2", "é" * 7])
def test_valid_ifname(name: str) -> None:
    assert validate_ifname(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("x" * 16, "longer than 15 bytes"),
        ("é" * 8, "longer than 15 bytes"),  # 16 bytes in UTF-8
        (".", '"." and ".." are not allowed'),
        ("..", '"." and ".." are not allowed'),
        ("a/b", 'contains "/"'),
        ("a:1", 'contains ":"'),
        ("a b", "contains whitespace"),
        ("a\tb", "contains whitespace"),
        ("eth0\n", "contains whitespace"),
    ],
)
def test_invalid_ifname(name: str, problem: str) -> None:
    assert validate_ifname(name) == problem


# -- input that is not strict JSON or not text ----------------------------------------------


@pytest.mark.parametrize("parse", [parse_networks, parse_default_network])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[" * 100000, "nested deeper than 64 levels"),
        ('[{"name": "a", "x": ' + "[" * 70 + "]" * 70 + "}]", "nested deeper than 64 levels"),
        ('[{"name": "a", "x": NaN}]', "NaN is not JSON"),
        ('[{"name": "a", "x": Infinity}]', "Infinity is not JSON"),
        ('\ufeff[{"name": "a"}]', "byte order mark"),
    ],
)
def test_deeply_nested_or_non_standard_annotation_is_an_invalid_config(
    parse: Any, value: str, problem: str
) -> None:
    with pytest.raises(InvalidConfig) as e:
        parse(value, "pods")
    assert e.value.code == 7
    assert "annotation" in e.value.msg and problem in e.value.msg


@pytest.mark.parametrize("key", ["name", "namespace", "interface", "mac", "deviceID"])
@pytest.mark.parametrize("bad", ["\ud800", "\udcff", "a\x00"])
def test_annotation_string_that_is_not_text_is_an_invalid_config(key: str, bad: str) -> None:
    element = {"name": "net1", key: bad}
    with pytest.raises(InvalidConfig) as e:
        parse_networks(json.dumps([element]), "pods")
    assert e.value.code == 7
    assert "element 1" in e.value.msg and key in e.value.msg


def test_text_form_interface_with_a_lone_surrogate_is_an_invalid_config() -> None:
    with pytest.raises(InvalidConfig) as e:
        parse_networks("net1@eth\udcff", "pods")
    assert "interface" in e.value.msg


@pytest.mark.parametrize("name", ["eth\udcff", "\ud800", "a\x00b"])
def test_interface_name_that_is_not_text_is_invalid(name: str) -> None:
    assert validate_ifname(name) is not None
