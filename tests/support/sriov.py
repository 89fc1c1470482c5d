"""A fake SR-IOV NIC on disk: a sysfs tree shaped like the kernel's, and the file
backend's VF table. The VF netdevs are whatever links the caller names (the integration
tests make them veths on a bridge standing in for the NIC's embedded switch).

    nic = FakeNic(tmp_path, pf="ens1f0", pf_pci="0000:03:00.0")
    vf = nic.add_vf("ens1f0v0")            # 0000:03:02.0, index 0, driver iavf
    dpdk = nic.add_vf("", driver="vfio-pci")  # no netdev: DPDK mode
    env = nic.env()  # MULTINET_SYSFS_ROOT and MULTINET_SRIOV_BACKEND for the plugin
    nic.table()["vfs"]["ens1f0"]["0"]; nic.calls()
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ORIGINAL = {
    "mac": "00:00:00:00:00:00",
    "vlan": 0,
    "qos": 0,
    "proto": "802.1q",
    "spoofchk": True,
    "trust": False,
    "link_state": "auto",
    "min_tx_rate": 0,
    "max_tx_rate": 0,
}


@dataclass
class FakeNic:
    root: Path
    pf: str = "ens1f0"
    pf_pci: str = "0000:03:00.0"
    vfs: list[str] = field(default_factory=list)  # VF PCI addresses, by index

    def __post_init__(self) -> None:
        self.sys = self.root / "sys"
        devices = self.sys / "bus" / "pci" / "devices"
        (devices / self.pf_pci / "net" / self.pf).mkdir(parents=True)
        (self.sys / "class" / "net").mkdir(parents=True)
        # As the kernel: class/net/<pf> -> the netdev under its PCI device, whose `device`
        # link leads back to the PCI device (where the virtfn<i> links are).
        os.symlink(
            f"../../bus/pci/devices/{self.pf_pci}/net/{self.pf}", self.sys / "class/net" / self.pf
        )
        os.symlink("../..", devices / self.pf_pci / "net" / self.pf / "device")
        self.table_path = self.root / "vf-table.json"
        self._write({"vfs": {self.pf: {}}, "calls": []})

    def _write(self, data: dict[str, Any]) -> None:
        self.table_path.write_text(json.dumps(data, indent=1))

    def add_vf(self, netdev: str, *, driver: str = "iavf", **state: Any) -> str:
        index = len(self.vfs)
        pci = f"{self.pf_pci[:-4]}{2 + index // 8:02x}.{index % 8}"
        devices = self.sys / "bus" / "pci" / "devices"
        vf_dir = devices / pci
        vf_dir.mkdir()
        os.symlink(f"../{self.pf_pci}", vf_dir / "physfn")
        os.symlink(f"../{pci}", devices / self.pf_pci / f"virtfn{index}")
        drivers = self.sys / "bus" / "pci" / "drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        os.symlink(f"../../drivers/{driver}", vf_dir / "driver")
        if netdev:
            (vf_dir / "net" / netdev).mkdir(parents=True)
        data = self.table()
        data["vfs"][self.pf][str(index)] = {**ORIGINAL, **state}
        self._write(data)
        self.vfs.append(pci)
        return pci

    def table(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.table_path.read_text())
        return data

    def vf_state(self, index: int) -> dict[str, Any]:
        state: dict[str, Any] = self.table()["vfs"][self.pf][str(index)]
        return state

    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.table().get("calls", [])
        return calls

    def refuse(self, index: int, setting: str) -> None:
        """The 'hardware' refuses this setting of this VF (EOPNOTSUPP)."""
        data = self.table()
        data.setdefault("unsupported", []).append(f"{self.pf}/{index}/{setting}")
        self._write(data)

    def env(self) -> dict[str, str]:
        return {
            "MULTINET_SYSFS_ROOT": str(self.sys),
            "MULTINET_SRIOV_BACKEND": f"file:{self.table_path}",
        }
