"""The plugin's netconf: sriov-cni's keys, parsed and validated in one place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multinet.cni.errors import InvalidConfig

DEFAULT_STATE_DIR = "/var/lib/cni/sriov"  # sriov-cni's cache directory
PCI_ADDRESS = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
VLAN_PROTOS = {"802.1q": 0x8100, "802.1ad": 0x88A8}
LINK_STATES = {"auto": 0, "enable": 1, "disable": 2}
ON_OFF = {"on": True, "off": False}


@dataclass(frozen=True)
class SriovConf:
    name: str
    cni_version: str
    device_id: str
    vlan: int | None = None
    vlan_qos: int | None = None
    vlan_proto: str | None = None
    mac: str | None = None
    spoofchk: bool | None = None
    trust: bool | None = None
    link_state: str | None = None
    min_tx_rate: int | None = None
    max_tx_rate: int | None = None
    mtu: int | None = None
    ipam: Mapping[str, Any] | None = None
    state_dir: str = DEFAULT_STATE_DIR
    raw: Mapping[str, Any] | None = None

    def pf_settings(self) -> dict[str, Any]:
        """What ADD sets on the PF for the VF (backend.VfState field names)."""
        out: dict[str, Any] = {}
        if self.vlan is not None:
            out["vlan"] = self.vlan
            out["qos"] = self.vlan_qos or 0
            out["proto"] = self.vlan_proto or "802.1q"
        if self.mac is not None:
            out["mac"] = self.mac.lower()
        if self.spoofchk is not None:
            out["spoofchk"] = self.spoofchk
        if self.trust is not None:
            out["trust"] = self.trust
        if self.link_state is not None:
            out["link_state"] = self.link_state
        if self.min_tx_rate is not None or self.max_tx_rate is not None:
            out["min_tx_rate"] = self.min_tx_rate or 0
            out["max_tx_rate"] = self.max_tx_rate or 0
        return out


def _int(raw: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidConfig(f"sriov: {key} must be an integer from {low} to {high}, got {value!r}")
    return value


def _choice(raw: Mapping[str, Any], key: str, choices: Mapping[str, Any]) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.lower() not in choices:
        raise InvalidConfig(f"sriov: {key} must be one of {', '.join(choices)}, got {value!r}")
    return value.lower()


def load(raw: Mapping[str, Any]) -> SriovConf:
    """sriov-cni's keys: deviceID (or pciBusID), vlan, vlanQoS, vlanProto, mac, spoofchk,
    trust, link_state, min_tx_rate, max_tx_rate, mtu (ours), ipam; runtimeConfig.mac wins
    over mac. The cache directory is `cniDir` (sriov-cni's /var/lib/cni/sriov)."""
    device = raw.get("deviceID") or raw.get("pciBusID")
    if not isinstance(device, str) or not PCI_ADDRESS.match(device):
        raise InvalidConfig(
            f"sriov: deviceID must be a VF's PCI address (0000:03:02.1), got {device!r}",
            "the device plugin passes it through the meta-plugin (the NAD's resourceName)",
        )
    vlan = _int(raw, "vlan", 0, 4094)
    qos = _int(raw, "vlanQoS", 0, 7)
    proto = _choice(raw, "vlanProto", VLAN_PROTOS)
    if (qos or proto) and not vlan:
        raise InvalidConfig("sriov: vlanQoS and vlanProto need a non-zero vlan")
    rc = raw.get("runtimeConfig") or {}
    mac = rc.get("mac") if isinstance(rc, Mapping) and rc.get("mac") else raw.get("mac")
    if mac is not None and (not isinstance(mac, str) or not MAC.match(mac)):
        raise InvalidConfig(f"sriov: mac must be a MAC address, got {mac!r}")
    min_rate = _int(raw, "min_tx_rate", 0, 2**32 - 1)
    max_rate = _int(raw, "max_tx_rate", 0, 2**32 - 1)
    if min_rate and max_rate and min_rate > max_rate:
        raise InvalidConfig(f"sriov: min_tx_rate {min_rate} exceeds max_tx_rate {max_rate}")
    ipam = raw.get("ipam")
    if ipam is not None and not (isinstance(ipam, Mapping) and (not ipam or ipam.get("type"))):
        raise InvalidConfig("sriov: ipam must be an object with a 'type'")
    state_dir = raw.get("cniDir") or DEFAULT_STATE_DIR
    if not isinstance(state_dir, str):
        raise InvalidConfig("sriov: cniDir must be a path")
    spoof, trust = _choice(raw, "spoofchk", ON_OFF), _choice(raw, "trust", ON_OFF)
    return SriovConf(
        name=str(raw.get("name", "")),
        cni_version=str(raw.get("cniVersion", "0.4.0")),
        device_id=device.lower(),
        vlan=vlan,
        vlan_qos=qos,
        vlan_proto=proto,
        mac=mac,
        spoofchk=None if spoof is None else ON_OFF[spoof],
        trust=None if trust is None else ON_OFF[trust],
        link_state=_choice(raw, "link_state", LINK_STATES),
        min_tx_rate=min_rate,
        max_tx_rate=max_rate,
        mtu=_int(raw, "mtu", 68, 65535),
        ipam=dict(ipam) if ipam else None,
        state_dir=state_dir,
        raw=dict(raw),
    )
