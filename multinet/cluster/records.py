"""Local records of network-status and events, under `<cniDir>/status/`.

The manifests source keeps its network-status here (it has no API server); the
Kubernetes source writes here too, so `multinetctl status` works on a node even
when the API server is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import os

from multinet.cni.errors import IOFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_EVENTS_BYTES = 1 << 20


class StatusRecords:
    def __init__(self, state_dir: str) -> None:
        self.dir = os.path.join(state_dir, "status")

    def path(self, namespace: str, name: str) -> str:
        return os.path.join(self.dir, f"{namespace}_{name}.json")

    def write_status(self, namespace: str, name: str, status: list[dict[str, Any]]) -> None:
        path = self.path(namespace, name)
        try:
            os.makedirs(self.dir, mode=0o755, exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps(status))  # one write, C encoder (indent= is pure Python)
            os.replace(tmp, path)
        except OSError as e:
            raise IOFailure(f"cannot write network-status for {namespace}/{name}", str(e)) from None

    def read_status(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        try:
            with open(self.path(namespace, name)) as f:
                data: list[dict[str, Any]] = json.load(f)
                return data
        except (OSError, ValueError):
            return None

    def remove_status(self, namespace: str, name: str) -> None:
        with contextlib.suppress(OSError):  # best effort: DEL must not fail on it
            os.unlink(self.path(namespace, name))

    def append_event(self, event: dict[str, Any]) -> None:
        path = os.path.join(self.dir, "events.jsonl")
        with contextlib.suppress(OSError):  # events are best effort
            os.makedirs(self.dir, mode=0o755, exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps(event) + "\n")
            if os.path.getsize(path) > MAX_EVENTS_BYTES:
                self._trim(path)

    @staticmethod
    def _trim(path: str) -> None:
        """Keep the newer half of the events, as an API server expires old ones."""
        with open(path) as f:
            lines = f.readlines()
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(lines[len(lines) // 2 :])
        os.replace(tmp, path)

    def events(self) -> list[dict[str, Any]]:
        try:
            with open(os.path.join(self.dir, "events.jsonl")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            return []
