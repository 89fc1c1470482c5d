"""Find a VF's PF, index and netdev in sysfs, as sriov-cni does.

The root is `MULTINET_SYSFS_ROOT` (default `/sys`): a test, or a machine without SR-IOV,
points it at a tree of the same shape (`bus/pci/devices/<vf>/physfn`, `.../net/<name>`,
`.../driver`, `class/net/<pf>/device/virtfn<i>`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from multinet.cni.errors import InvalidConfig

SYSFS_ROOT_ENV = "MULTINET_SYSFS_ROOT"
# Userspace drivers: the VF has no netdev, DPDK (or another userspace stack) owns it.
USERSPACE_DRIVERS = frozenset({"vfio-pci", "uio_pci_generic", "igb_uio"})


@dataclass(frozen=True)
class Vf:
    pci: str
    pf: str  # the PF's netdev name
    pf_pci: str
    index: int
    netdev: str  # '' in DPDK mode
    driver: str

    @property
    def dpdk(self) -> bool:
        return self.driver in USERSPACE_DRIVERS


def root(env: Mapping[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get(SYSFS_ROOT_ENV) or "/sys"


def _names(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def discover(sys_root: str, pci: str) -> Vf:
    dev = os.path.join(sys_root, "bus", "pci", "devices", pci)
    if not os.path.exists(dev):
        raise InvalidConfig(f"sriov: PCI device {pci} not found ({dev})")
    physfn = os.path.join(dev, "physfn")
    if not os.path.exists(physfn):
        raise InvalidConfig(f"sriov: {pci} is not a VF (no physfn in {dev})")
    pf_pci = os.path.basename(os.path.realpath(physfn))
    pfs = _names(os.path.join(physfn, "net"))
    if not pfs:
        raise InvalidConfig(f"sriov: the PF {pf_pci} of VF {pci} has no netdev")
    pf = pfs[0]
    index = _index(sys_root, pf, pci)
    netdevs = _names(os.path.join(dev, "net"))
    driver = os.path.basename(os.path.realpath(os.path.join(dev, "driver")))
    if not os.path.exists(os.path.join(dev, "driver")):
        driver = ""
    return Vf(pci, pf, pf_pci, index, netdevs[0] if netdevs else "", driver)


def _index(sys_root: str, pf: str, pci: str) -> int:
    device = os.path.join(sys_root, "class", "net", pf, "device")
    for name in _names(device):
        if name.startswith("virtfn") and name[6:].isdigit():
            if os.path.basename(os.path.realpath(os.path.join(device, name))) == pci:
                return int(name[6:])
    raise InvalidConfig(f"sriov: VF {pci} is not among the virtfn links of PF {pf}")
