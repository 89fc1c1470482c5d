"""Good and bad plugin configs for every schema (shared with the real-plugin check).

Placeholders the integration test replaces: MNBRIDGE (a bridge it made, also the macvlan
master), /tmp/MNDATA (host-local's dataDir), /tmp/MNTUNING (tuning's dataDir: without it
tuning keeps its backups in the host's /run/cni/tuning), 10.199. (a free subnet)."""

from __future__ import annotations

from typing import Any

HL: dict[str, Any] = {
    "type": "host-local",
    "ranges": [[{"subnet": "10.199.0.0/24", "gateway": "10.199.0.1"}]],
    "dataDir": "/tmp/MNDATA",
}
STATIC: dict[str, Any] = {
    "type": "static",
    "addresses": [{"address": "10.199.1.5/24", "gateway": "10.199.1.1"}],
    "routes": [{"dst": "10.200.0.0/16", "gw": "10.199.1.1"}],
}


def conf(*plugins: dict[str, Any]) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "mn-test", "plugins": list(plugins)}


BRIDGE = {"type": "bridge", "bridge": "MNBRIDGE", "ipam": HL}

# (id, config): valid; each type in REAL is also run by the Debian plugin (ADD, CHECK, DEL).
GOOD: list[tuple[str, dict[str, Any]]] = [
    ("bridge", conf(BRIDGE)),
    ("bridge-gateway", conf({**BRIDGE, "isGateway": True, "mtu": 1400, "hairpinMode": True})),
    ("bridge-static", conf({**BRIDGE, "ipam": STATIC})),
    ("bridge-no-ipam", conf({"type": "bridge", "bridge": "MNBRIDGE"})),
    ("macvlan", conf({"type": "macvlan", "master": "MNBRIDGE", "mode": "bridge", "ipam": HL})),
    (
        "macvlan-private",
        conf({"type": "macvlan", "master": "MNBRIDGE", "mode": "private", "ipam": STATIC}),
    ),
    ("ptp", conf({"type": "ptp", "ipMasq": False, "mtu": 1500, "ipam": HL})),
    (
        "tuning",
        conf(
            BRIDGE,
            {
                "type": "tuning",
                "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"},
                "mtu": 1300,
                "dataDir": "/tmp/MNTUNING",
            },
        ),
    ),
    (
        "portmap",
        conf(BRIDGE, {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}),
    ),
    (
        "bandwidth",
        conf(BRIDGE, {"type": "bandwidth", "ingressRate": 1000000, "ingressBurst": 100000}),
    ),
    (
        "host-local-legacy",
        conf(
            {
                **BRIDGE,
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.199.2.0/24",
                    "rangeStart": "10.199.2.10",
                    "rangeEnd": "10.199.2.20",
                    "dataDir": "/tmp/MNDATA",
                },
            }
        ),
    ),
    ("ipvlan", conf({"type": "ipvlan", "master": "eth0", "mode": "l3", "ipam": HL})),
    ("vlan", conf({"type": "vlan", "master": "eth0", "vlanId": 100, "ipam": HL})),
    ("host-device", conf({"type": "host-device", "device": "eth1", "ipam": STATIC})),
    ("host-device-pci", conf({"type": "host-device", "pciBusID": "0000:03:00.1"})),
    ("sbr", conf(BRIDGE, {"type": "sbr", "table": 100})),
    (
        "sriov",
        conf(
            {
                "type": "sriov",
                "deviceID": "0000:03:02.0",
                "vlan": 100,
                "vlanQoS": 3,
                "vlanProto": "802.1ad",
                "spoofchk": "off",
                "trust": "on",
                "link_state": "auto",
                "min_tx_rate": 10,
                "max_tx_rate": 100,
                "ipam": HL,
            }
        ),
    ),
    (
        "multinet-sriov",
        conf({"type": "multinet-sriov", "vlan": 5, "mac": "0a:58:0a:01:00:05", "mtu": 9000}),
    ),
    (
        "dhcp",
        conf(
            {
                "type": "macvlan",
                "master": "eth0",
                "ipam": {"type": "dhcp", "daemonSocketPath": "/run/cni/dhcp.sock"},
            }
        ),
    ),
    (
        "whereabouts",
        conf(
            {
                "type": "macvlan",
                "master": "eth0",
                "ipam": {
                    "type": "whereabouts",
                    "range": "10.199.0.0/24",
                    "range_start": "10.199.0.10",
                    "exclude": ["10.199.0.32/28"],
                },
            }
        ),
    ),
    (
        "whereabouts-dash",
        conf(
            {
                "type": "macvlan",
                "master": "eth0",
                "ipam": {"type": "whereabouts", "range": "10.199.0.10-10.199.0.20/24"},
            }
        ),
    ),
    (
        "multinet-ipam-dual-stack",
        conf(
            {
                "type": "macvlan",
                "master": "eth0",
                "ipam": {
                    "type": "multinet-ipam",
                    "range": "10.199.0.0/24",
                    "gateway": "10.199.0.1",
                    "ipRanges": [{"range": "fd00:199::/64", "exclude": ["fd00:199::/120"]}],
                    "routes": [{"dst": "0.0.0.0/0", "gw": "10.199.0.1"}],
                    "kubernetes": {"kubeconfig": "/etc/cni/net.d/multinet.d/multinet.kubeconfig"},
                },
            }
        ),
    ),
    (
        "dual-stack",
        conf(
            {
                **BRIDGE,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "10.199.0.0/24"}], [{"subnet": "fd00:199::/64"}]],
                },
            }
        ),
    ),
    ("single-plugin", {"cniVersion": "1.0.0", "name": "single", "type": "ptp", "ipam": HL}),
    ("no-name", {"cniVersion": "0.4.0", "plugins": [BRIDGE]}),
]

# The types the Debian plugins can run on this kernel (no ipvlan, vlan, dummy here; no
# host device or SR-IOV hardware; no dhcp server; whereabouts is not a Debian plugin).
REAL = {
    "bridge", "bridge-gateway", "bridge-static", "bridge-no-ipam", "macvlan", "macvlan-private",
    "ptp", "tuning", "portmap", "bandwidth", "host-local-legacy", "single-plugin",
}  # fmt: skip

# (id, config, path, message part): each config has that error.
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("no-type", conf({"bridge": "x"}), "plugins[0]", "required key 'type' is missing"),
    ("type-path", conf({"type": "../bridge"}), "plugins[0].type", "must be a file name"),
    (
        "empty-plugins",
        {"cniVersion": "1.0.0", "name": "x", "plugins": []},
        "plugins",
        "must not be empty",
    ),
    ("neither", {"cniVersion": "1.0.0", "name": "x"}, "", "needs 'plugins' or 'type'"),
    ("version", {**conf(BRIDGE), "cniVersion": "1.0"}, "cniVersion", "does not match"),
    (
        "version-unsupported",
        {**conf(BRIDGE), "cniVersion": "9.0.0"},
        "cniVersion",
        "9.0.0 is not a supported CNI version",
    ),
    ("bridge-mtu", conf({**BRIDGE, "mtu": 40}), "plugins[0].mtu", "40 is less than the minimum 68"),
    (
        "bridge-mtu-big",
        conf({**BRIDGE, "mtu": 70000}),
        "plugins[0].mtu",
        "more than the maximum 65535",
    ),
    (
        "bridge-gw-type",
        conf({**BRIDGE, "isGateway": "yes"}),
        "plugins[0].isGateway",
        "expected boolean",
    ),
    (
        "bridge-name-long",
        conf({**BRIDGE, "bridge": "a-very-long-bridge-name"}),
        "plugins[0].bridge",
        "too long",
    ),
    ("bridge-vlan", conf({**BRIDGE, "vlan": 4095}), "plugins[0].vlan", "maximum 4094"),
    (
        "bridge-trunk",
        conf({**BRIDGE, "vlanTrunk": [{"minID": 10}]}),
        "plugins[0].vlanTrunk[0]",
        "needs id, or minID and maxID",
    ),
    (
        "macvlan-mode",
        conf({"type": "macvlan", "mode": "bridged"}),
        "plugins[0].mode",
        "bridged is not one of",
    ),
    ("ipvlan-mode", conf({"type": "ipvlan", "mode": "l4"}), "plugins[0].mode", "is not one of"),
    (
        "vlan-id",
        conf({"type": "vlan", "master": "eth0", "vlanId": 5000, "ipam": HL}),
        "plugins[0].vlanId",
        "maximum 4094",
    ),
    (
        "vlan-no-master",
        conf({"type": "vlan", "vlanId": 5, "ipam": HL}),
        "plugins[0]",
        "required key 'master'",
    ),
    ("ptp-no-ipam", conf({"type": "ptp"}), "plugins[0]", "required key 'ipam'"),
    (
        "host-device-mac",
        conf({"type": "host-device", "hwaddr": "zz"}),
        "plugins[0].hwaddr",
        "not a MAC address",
    ),
    (
        "tuning-sysctl",
        conf(BRIDGE, {"type": "tuning", "sysctl": {"net.core.somaxconn": 500}}),
        "plugins[1].sysctl.net.core.somaxconn",
        "expected string",
    ),
    ("tuning-mac", conf(BRIDGE, {"type": "tuning", "mac": "0a:58"}), "plugins[1].mac", "not a MAC"),
    (
        "portmap-snat",
        conf(BRIDGE, {"type": "portmap", "snat": "yes"}),
        "plugins[1].snat",
        "expected boolean",
    ),
    (
        "portmap-bit",
        conf(BRIDGE, {"type": "portmap", "markMasqBit": 32}),
        "plugins[1].markMasqBit",
        "maximum 31",
    ),
    (
        "portmap-both",
        conf(BRIDGE, {"type": "portmap", "markMasqBit": 3, "externalSetMarkChain": "X"}),
        "plugins[1]",
        "cannot be used together",
    ),
    (
        "bandwidth-burst",
        conf(BRIDGE, {"type": "bandwidth", "ingressRate": 1000}),
        "plugins[1].ingressRate",
        "needs 'ingressBurst' too",
    ),
    (
        "bandwidth-subnet",
        conf(BRIDGE, {"type": "bandwidth", "unshapedSubnets": ["10.0.0.0/33"]}),
        "plugins[1].unshapedSubnets[0]",
        "not a CIDR",
    ),
    (
        "sbr-table",
        conf(BRIDGE, {"type": "sbr", "table": 0}),
        "plugins[1].table",
        "less than the minimum 1",
    ),
    ("sriov-qos", conf({"type": "sriov", "vlanQoS": 3}), "plugins[0].vlanQoS", "needs 'vlan' too"),
    (
        "sriov-qos-range",
        conf({"type": "sriov", "vlan": 1, "vlanQoS": 8}),
        "plugins[0].vlanQoS",
        "maximum 7",
    ),
    (
        "sriov-proto",
        conf({"type": "sriov", "vlanProto": "802.1Q"}),
        "plugins[0].vlanProto",
        "is not one of",
    ),
    (
        "sriov-spoofchk",
        conf({"type": "sriov", "spoofchk": True}),
        "plugins[0].spoofchk",
        "expected string",
    ),
    (
        "sriov-link",
        conf({"type": "sriov", "link_state": "up"}),
        "plugins[0].link_state",
        "is not one of",
    ),
    (
        "sriov-device",
        conf({"type": "sriov", "deviceID": "03:02"}),
        "plugins[0].deviceID",
        "not a PCI address",
    ),
    (
        "sriov-rates",
        conf({"type": "sriov", "min_tx_rate": 200, "max_tx_rate": 100}),
        "plugins[0].min_tx_rate",
        "above max_tx_rate",
    ),
    (
        "multinet-sriov-vlan",
        conf({"type": "multinet-sriov", "vlan": -1}),
        "plugins[0].vlan",
        "less than the minimum 0",
    ),
    (
        "hl-start",
        conf(
            {
                **BRIDGE,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]],
                },
            }
        ),
        "plugins[0].ipam.ranges[0][0].rangeStart",
        "10.2.0.5 is outside subnet 10.1.0.0/24",
    ),
    (
        "hl-gateway",
        conf(
            {
                **BRIDGE,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "10.1.0.0/24", "gateway": "10.1.1.1"}]],
                },
            }
        ),
        "plugins[0].ipam.ranges[0][0].gateway",
        "outside subnet",
    ),
    (
        "hl-order",
        conf(
            {
                **BRIDGE,
                "ipam": {
                    "type": "host-local",
                    "ranges": [
                        [
                            {
                                "subnet": "10.1.0.0/24",
                                "rangeStart": "10.1.0.50",
                                "rangeEnd": "10.1.0.10",
                            }
                        ]
                    ],
                },
            }
        ),
        "plugins[0].ipam.ranges[0][0].rangeStart",
        "is after rangeEnd",
    ),
    (
        "hl-subnet",
        conf({**BRIDGE, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0"}]]}}),
        "plugins[0].ipam.ranges[0][0].subnet",
        "not a CIDR",
    ),
    (
        "hl-mixed",
        conf(
            {
                **BRIDGE,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}]],
                },
            }
        ),
        "plugins[0].ipam.ranges[0]",
        "mixes IPv4 and IPv6",
    ),
    (
        "hl-nothing",
        conf({**BRIDGE, "ipam": {"type": "host-local"}}),
        "plugins[0].ipam",
        "needs 'ranges' or 'subnet'",
    ),
    (
        "hl-legacy-start",
        conf(
            {
                **BRIDGE,
                "ipam": {"type": "host-local", "subnet": "10.1.0.0/24", "rangeStart": "10.9.0.1"},
            }
        ),
        "plugins[0].ipam.rangeStart",
        "outside subnet",
    ),
    (
        "hl-route",
        conf({**BRIDGE, "ipam": {**HL, "routes": [{"dst": "default"}]}}),
        "plugins[0].ipam.routes[0].dst",
        "not a CIDR",
    ),
    (
        "static-address",
        conf({**BRIDGE, "ipam": {"type": "static", "addresses": [{"address": "10.1.0.5"}]}}),
        "plugins[0].ipam.addresses[0].address",
        "not a CIDR",
    ),
    (
        "static-family",
        conf(
            {
                **BRIDGE,
                "ipam": {
                    "type": "static",
                    "addresses": [{"address": "10.1.0.5/24", "gateway": "fd00::1"}],
                },
            }
        ),
        "plugins[0].ipam.addresses[0].gateway",
        "not of the address's family",
    ),
    (
        "dhcp-socket",
        conf({"type": "macvlan", "ipam": {"type": "dhcp", "daemonSocketPath": ""}}),
        "plugins[0].ipam.daemonSocketPath",
        "must not be empty",
    ),
    (
        "whereabouts-range",
        conf({"type": "macvlan", "ipam": {"type": "whereabouts", "range": "10.1.0.0"}}),
        "plugins[0].ipam.range",
        "is not a range",
    ),
    (
        "whereabouts-start",
        conf(
            {
                "type": "macvlan",
                "ipam": {"type": "whereabouts", "range": "10.1.0.0/24", "range_start": "10.3.0.1"},
            }
        ),
        "plugins[0].ipam.range_start",
        "outside subnet",
    ),
    (
        "multinet-ipam-etcd",
        conf(
            {
                "type": "macvlan",
                "ipam": {"type": "multinet-ipam", "range": "10.1.0.0/24", "datastore": "etcd"},
            }
        ),
        "plugins[0].ipam.datastore",
        "is not one of kubernetes",
    ),
    (
        "multinet-ipam-range-end",
        conf(
            {
                "type": "macvlan",
                "ipam": {
                    "type": "multinet-ipam",
                    "ipRanges": [{"range": "10.1.0.0/24", "range_end": "10.2.0.9"}],
                },
            }
        ),
        "plugins[0].ipam.ipRanges[0].range_end",
        "outside subnet",
    ),
    (
        "ipam-no-type",
        conf({**BRIDGE, "ipam": {"subnet": "10.1.0.0/24"}}),
        "plugins[0].ipam",
        "required key 'type'",
    ),
    (
        "capabilities",
        conf({**BRIDGE, "capabilities": {"portMappings": "yes"}}),
        "plugins[0].capabilities.portMappings",
        "expected boolean",
    ),
]
