"""The VF settings on the PF: one small interface, two backends.

`netlink` (netlink.NetlinkBackend: IFLA_VF_* on the PF through pyroute2, real hardware)
and `file:PATH` (FileBackend: a JSON VF table and a call log, for tests and machines
without SR-IOV), chosen by `MULTINET_SRIOV_BACKEND` (default `netlink`).

The file holds `{"vfs": {"<pf>": {"<index>": {<VfState fields>}}}, "calls": [...]}`; a
VF not in the table does not exist (the index is out of range), and `"unsupported":
["<pf>/<index>/<setting>", ...]` names settings the "hardware" refuses (EOPNOTSUPP), as
a PF without that feature would.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from multinet.cni.errors import InvalidConfig, IOFailure

BACKEND_ENV = "MULTINET_SRIOV_BACKEND"
# The order ADD applies settings in (and a rollback undoes them in reverse).
SETTINGS = (
    "mac",
    "vlan",
    "spoofchk",
    "trust",
    "link_state",
    "rate",
)


@dataclass(frozen=True)
class VfState:
    """A VF's PF-side state (what `ip link show <pf>` lists for `vf <index>`)."""

    mac: str = "00:00:00:00:00:00"
    vlan: int = 0
    qos: int = 0
    proto: str = "802.1q"
    spoofchk: bool = True
    trust: bool = False
    link_state: str = "auto"
    min_tx_rate: int = 0
    max_tx_rate: int = 0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> VfState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def setting_values(state: VfState, setting: str) -> dict[str, Any]:
    """The VfState fields one setting carries (vlan: vlan, qos, proto; rate: both rates)."""
    names = {
        "vlan": ("vlan", "qos", "proto"),
        "rate": ("min_tx_rate", "max_tx_rate"),
    }.get(setting, (setting,))
    return {n: getattr(state, n) for n in names}


def setting_of(field_name: str) -> str:
    if field_name in ("qos", "proto"):
        return "vlan"
    if field_name in ("min_tx_rate", "max_tx_rate"):
        return "rate"
    return field_name


class VfBackend(Protocol):
    def get(self, pf: str, vf: int) -> VfState:
        """The VF's state; InvalidConfig when the PF has no such VF."""
        ...

    def set(self, pf: str, vf: int, setting: str, values: Mapping[str, Any]) -> None:
        """Apply one setting (a SETTINGS name) with its fields; a CNIError naming the PF,
        the VF and the setting on failure."""
        ...


class FileBackend:
    def __init__(self, path: str) -> None:
        self.path = path

    @contextlib.contextmanager
    def _table(self, write: bool) -> Iterator[dict[str, Any]]:
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError as e:
            raise IOFailure(f"sriov: the VF table {self.path} cannot be opened", str(e)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r") as f:
                data = json.load(f)
            yield data
            if write:
                tmp = self.path + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(data, f, indent=1)
                os.replace(tmp, self.path)
        except ValueError as e:
            raise IOFailure(f"sriov: the VF table {self.path} is not JSON", str(e)) from None
        finally:
            os.close(fd)

    @staticmethod
    def _vf(data: dict[str, Any], pf: str, vf: int) -> dict[str, Any]:
        table = data.get("vfs", {}).get(pf)
        if table is None:
            raise InvalidConfig(f"sriov: PF {pf} has no SR-IOV VFs (operation not supported)")
        if str(vf) not in table:
            raise InvalidConfig(f"sriov: PF {pf} has no VF {vf} (index out of range)")
        entry: dict[str, Any] = table[str(vf)]
        return entry

    def get(self, pf: str, vf: int) -> VfState:
        with self._table(write=False) as data:
            return VfState.from_dict(self._vf(data, pf, vf))

    def set(self, pf: str, vf: int, setting: str, values: Mapping[str, Any]) -> None:
        with self._table(write=True) as data:
            entry = self._vf(data, pf, vf)
            data.setdefault("calls", []).append(
                {"pf": pf, "vf": vf, "setting": setting, "values": dict(values)}
            )
            if f"{pf}/{vf}/{setting}" in data.get("unsupported", []):
                failed = f"sriov: setting {setting} of VF {vf} on PF {pf} failed"
                raise IOFailure(failed, "operation not supported (EOPNOTSUPP)")
            entry.update(values)


def from_env(env: Mapping[str, str] | None = None) -> VfBackend:
    spec = (os.environ if env is None else env).get(BACKEND_ENV, "") or "netlink"
    if spec.startswith("file:") and len(spec) > 5:
        return FileBackend(spec[5:])
    if spec == "netlink":
        from multinet.plugins.sriov.netlink import NetlinkBackend

        return NetlinkBackend()
    raise InvalidConfig(f"sriov: {BACKEND_ENV}={spec!r}: expected 'netlink' or 'file:PATH'")
