"""The plugin's state under its cache directory (`cniDir`, default /var/lib/cni/sriov).

- `<dir>/<container ID>-<ifname>.json`: what ADD saved to undo itself (the VF, its
  original PF-side state and netdev name/MAC/MTU, what was applied, DPDK mode, the IPAM
  result). Written before the first change, so a DEL after a crash finds it.
- `<dir>/pci/<VF PCI address>`: the VF's owner (container, ifname, netns). A VF is
  allocated once; a second ADD fails unless the owner's netns is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from typing import Any

from multinet.cni.errors import IOFailure


class State:
    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, container_id: str, ifname: str) -> str:
        return os.path.join(self.root, f"{container_id}-{ifname}.json")

    def _owner_path(self, pci: str) -> str:
        return os.path.join(self.root, "pci", pci)

    @staticmethod
    def _write(path: str, data: dict[str, Any]) -> None:
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except OSError as e:
            raise IOFailure(f"sriov: cannot write {path}", str(e)) from None

    @staticmethod
    def _read(path: str) -> dict[str, Any] | None:
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise IOFailure(f"sriov: cannot read {path}", str(e)) from None
        return data if isinstance(data, dict) else None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One ADD/DEL at a time on this node's VFs (allocation is check-then-write)."""
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(self.root, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise IOFailure(f"sriov: cannot lock {self.root}", str(e)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self, container_id: str, ifname: str) -> dict[str, Any] | None:
        return self._read(self._path(container_id, ifname))

    def save(self, container_id: str, ifname: str, data: dict[str, Any]) -> None:
        self._write(self._path(container_id, ifname), data)

    def remove(self, container_id: str, ifname: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(container_id, ifname))

    def owner(self, pci: str) -> dict[str, Any] | None:
        return self._read(self._owner_path(pci))

    def allocate(self, pci: str, owner: dict[str, Any]) -> None:
        self._write(self._owner_path(pci), owner)

    def release(self, pci: str, container_id: str, ifname: str) -> None:
        """Only the owner's own record goes (another ADD may have taken a stale one over)."""
        current = self.owner(pci)
        if current is not None and (current.get("containerID"), current.get("ifname")) == (
            container_id,
            ifname,
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._owner_path(pci))
