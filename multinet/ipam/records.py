"""The node's own note of each attachment's pools, under `dataDir`.

The pools in the API server are the record of who holds what; this note is what lets a
DEL decide when the API server cannot be reached: written before an ADD's first write to
a pool and removed once DEL released everything, so "no note" means this node never
allocated for the attachment (or released it all), and a DEL may succeed without the API
server, as CNI asks of an IPAM DEL. With a note, that DEL is code 11: the runtime retries
it, and the addresses are not leaked.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from multinet.cni.errors import IOFailure


class Records:
    def __init__(self, directory: str) -> None:
        self.dir = directory

    def path(self, container_id: str, ifname: str) -> str:
        return os.path.join(self.dir, f"{container_id}-{ifname}.json")

    def write(self, container_id: str, ifname: str, note: dict[str, Any]) -> None:
        path = self.path(container_id, ifname)
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps(note))
            os.replace(tmp, path)
        except OSError as e:
            raise IOFailure(f"multinet-ipam: cannot write {path}", str(e)) from None

    def exists(self, container_id: str, ifname: str) -> bool:
        return os.path.exists(self.path(container_id, ifname))

    def remove(self, container_id: str, ifname: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(container_id, ifname))
