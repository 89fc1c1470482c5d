"""Fakes for the engine's seams (multinet.engine.ports): journal store, pod netns, executor.

They keep the state a real host would keep (journals as persisted JSON, the interfaces in
each pod) and record every call, so a test can assert what the engine did, in what order.
`Crash` stands for a kill -9: the executor raises it after snapshotting what was persisted,
and the test then builds a new engine on that snapshot, as a restarted process would be.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import CNIError, DelegateError, IOFailure
from multinet.cni.exec import Invocation
from multinet.engine.journal import Journal, SandboxBusy
from multinet.engine.routes import RoutePlan


class Crash(BaseException):
    """The process died here (kill -9): nothing after this point ran."""


@dataclass
class World:
    """What outlives a process: persisted journals and the pods' interfaces."""

    journals: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> JSON
    pods: dict[str, set[str]] = field(default_factory=dict)  # netns path -> interface names

    def snapshot(self) -> World:
        return copy.deepcopy(self)


class FakeStore:
    """An in-memory JournalStore over World.journals; records (entries, states, durable)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.saves: list[tuple[list[str], list[str], bool, bool]] = []  # names, states, ...
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.written: dict[tuple[str, str], float] = {}  # when each journal was saved

    @contextlib.contextmanager
    def lock(
        self, container_id: str, ifname: str, create: bool = True, wait: bool = True
    ) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault((container_id, ifname), threading.Lock())
        if not lock.acquire(blocking=wait):
            raise SandboxBusy(f"sandbox {container_id}/{ifname} is busy")
        try:
            yield
        finally:
            lock.release()

    def modified(self, container_id: str, ifname: str) -> float | None:
        return self.written.get((container_id, ifname))

    def load(self, container_id: str, ifname: str) -> Journal | None:
        raw = self.world.journals.get((container_id, ifname))
        return None if raw is None else Journal.from_dict(json.loads(raw))

    def save(self, journal: Journal, durable: bool = True) -> None:
        self.world.journals[(journal.container_id, journal.ifname)] = json.dumps(journal.to_dict())
        self.written[(journal.container_id, journal.ifname)] = time.time()
        self.saves.append(
            (
                [e.name for e in journal.entries],
                [e.state for e in journal.entries],
                journal.complete,
                durable,
            )
        )

    def remove(self, container_id: str, ifname: str) -> None:
        self.world.journals.pop((container_id, ifname), None)

    def keys(self) -> list[tuple[str, str]]:
        return sorted(self.world.journals)


class FakeNetns:
    """The pods' network namespaces: a set of interface names per netns path."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.route_plans: list[tuple[str, RoutePlan]] = []
        self.route_error: CNIError | None = None
        self.removed: list[tuple[str, list[str]]] = []  # the leak guard's removals

    def exists(self, path: str) -> bool:
        return path in self.world.pods

    def interface_names(self, path: str) -> set[str]:
        if path not in self.world.pods:
            raise IOFailure(f"cannot open network namespace {path}")
        return set(self.world.pods[path])

    def apply_routes(self, path: str, plan: RoutePlan) -> None:
        if self.route_error is not None:
            raise self.route_error
        self.route_plans.append((path, plan))

    def remove_links(self, path: str, names: Sequence[str]) -> None:
        self.removed.append((path, list(names)))
        self.world.pods[path] -= set(names)


@dataclass(frozen=True)
class Call:
    command: str
    network: str
    ifname: str
    prev_result: Mapping[str, Any] | None = None
    timeout: float = field(default=0.0, compare=False)  # the Invocation's


class FakeExecutor:
    """Plugins that put (ADD) and remove (DEL) `ifname` in the pod, and can fail or crash.

    `fail[(command, network)]` is the CNIError that call raises; `crash_on` is the
    (command, network) at which the process dies; `barrier`, when set, makes every ADD
    or DEL of a secondary network wait for the others (proof that they run at once).
    """

    def __init__(self, world: World, store: FakeStore) -> None:
        self.world = world
        self.store = store
        self.calls: list[Call] = []
        self.fail: dict[tuple[str, str], CNIError] = {}
        self.crash_on: tuple[str, str] | None = None
        self.crashed: World | None = None  # what was persisted when it died
        self.barrier: threading.Barrier | None = None
        # Networks whose ADD, when it fails, leaves its interface (the reference macvlan
        # when its IPAM fails), and whose DEL then fails too without removing it.
        self.leaky: set[str] = set()
        self._lock = threading.Lock()

    def _enter(self, command: str, net: NetworkConfig, inv: Invocation, prev: Any) -> None:
        with self._lock:
            self.calls.append(Call(command, net.name, inv.ifname, prev, inv.timeout))
        if (command, net.name) == self.crash_on:
            self.crashed = self.world.snapshot()
            raise Crash()
        if self.barrier is not None and inv.ifname != "eth0":
            self.barrier.wait(timeout=5)
        error = self.fail.get((command, net.name))
        if error is not None:
            raise error

    def add(
        self, net: NetworkConfig, inv: Invocation, runtime_config: Mapping[str, Any]
    ) -> dict[str, Any]:
        if net.name in self.leaky:
            self.world.pods.setdefault(inv.netns, set()).add(inv.ifname)
        self._enter("ADD", net, inv, None)
        self.world.pods.setdefault(inv.netns, set()).add(inv.ifname)
        return result(net.cni_version, inv.ifname, inv.netns, len(self.calls))

    def delete(
        self,
        net: NetworkConfig,
        inv: Invocation,
        runtime_config: Mapping[str, Any],
        prev_result: Mapping[str, Any] | None,
    ) -> None:
        self._enter("DEL", net, inv, prev_result)
        if net.name in self.leaky:
            raise DelegateError(f"{net.name} DEL failed: IPAM is unreachable")
        self.world.pods.get(inv.netns, set()).discard(inv.ifname)

    def check(
        self,
        net: NetworkConfig,
        inv: Invocation,
        runtime_config: Mapping[str, Any],
        prev_result: Mapping[str, Any] | None,
    ) -> None:
        self._enter("CHECK", net, inv, prev_result)
        if inv.ifname not in self.world.pods.get(inv.netns, set()):
            raise DelegateError(f"{net.name} CHECK failed: {inv.ifname} is gone")

    def gc(self, net: NetworkConfig, inv: Invocation, valid: Sequence[Mapping[str, str]]) -> None:
        self._enter("GC", net, inv, {"valid": [dict(v) for v in valid]})

    def status(self, net: NetworkConfig, inv: Invocation) -> None:
        self._enter("STATUS", net, inv, None)

    def of(self, command: str) -> list[str]:
        """The networks `command` ran for, in order."""
        return [c.network for c in self.calls if c.command == command]


def result(version: str, ifname: str, netns: str, n: int) -> dict[str, Any]:
    """A bridge-like result: one pod interface, one address, a default route."""
    return {
        "cniVersion": version,
        "interfaces": [{"name": ifname, "mac": f"0a:00:00:00:00:{n:02x}", "sandbox": netns}],
        "ips": [{"address": f"10.{n}.0.5/24", "gateway": f"10.{n}.0.1", "interface": 0}],
        "routes": [{"dst": "0.0.0.0/0", "gw": f"10.{n}.0.1"}],
    }
