"""The engine's seams: every piece of I/O it does goes through one of these, passed in.

The composition roots (thin mode, the daemon) give it the real ones; the engine's unit
tests give it fakes (tests/unit/engine/fakes.py), so that rollback, crash recovery,
parallel batches and every DEL corner case run without root.

- JournalStore: where journals live (the file store: engine.journal.FileJournalStore);
  shaped after host-local's store interface.
- PodNetns: what the engine asks of the pod's network namespace (engine.netns.HostNetns).
- Executor: runs one network's plugins for a command (engine.delegates.ChainExecutor,
  over cni.chain and cni.exec), the role of libcni's invoke.Exec.
- LegacyRecords: journals another meta-plugin left for containers it attached (Multus's
  cache: engine.multus_cache.MultusCache), read by a DEL that finds no journal of ours.
- ReleaseStore: the releases a DEL skipped, kept until done (engine.releases).
- Gate: held shared by what may allocate, alone by a CNI GC (engine.gate.HostGate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import CNIError
from multinet.cni.exec import Invocation
from multinet.engine.journal import Entry, Journal
from multinet.engine.routes import RoutePlan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # the protocols are mypy's: at run time, plain classes


class JournalStore(Protocol):
    def lock(
        self, container_id: str, ifname: str, create: bool = True
    ) -> AbstractContextManager[None]:
        """Serialise every operation on one (container, ifname), across processes.
        `create=False` (DEL): where no journal was ever kept, create nothing."""
        ...

    def load(self, container_id: str, ifname: str) -> Journal | None: ...

    def save(self, journal: Journal, durable: bool = True) -> None:
        """Replace the journal atomically; `durable` also survives a power loss."""
        ...

    def remove(self, container_id: str, ifname: str) -> None: ...

    def keys(self) -> list[tuple[str, str]]:
        """(container ID, ifname) of every journal held."""
        ...


class PodNetns(Protocol):
    def exists(self, path: str) -> bool: ...

    def interface_names(self, path: str) -> set[str]: ...

    def apply_routes(self, path: str, plan: RoutePlan) -> None:
        """Make the pod's routes what the plan says (engine.routes: default-route moves,
        dropped default routes, source routing)."""
        ...

    def remove_links(self, path: str, names: Sequence[str]) -> None:
        """Delete these interfaces from the pod (those a failed delegate left behind)."""
        ...


class Executor(Protocol):
    def add(
        self, net: NetworkConfig, inv: Invocation, runtime_config: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def delete(
        self,
        net: NetworkConfig,
        inv: Invocation,
        runtime_config: Mapping[str, Any],
        prev_result: Mapping[str, Any] | None,
    ) -> None: ...

    def check(
        self,
        net: NetworkConfig,
        inv: Invocation,
        runtime_config: Mapping[str, Any],
        prev_result: Mapping[str, Any] | None,
    ) -> None: ...

    def gc(
        self, net: NetworkConfig, inv: Invocation, valid: Sequence[Mapping[str, str]]
    ) -> None: ...

    def status(self, net: NetworkConfig, inv: Invocation) -> None: ...


class LegacyRecords(Protocol):
    """What another meta-plugin (Multus) recorded of a container it attached, as a journal.

    Only DEL reads it, and only when multinet has no journal of its own for the container:
    the pods a node's previous meta-plugin attached are removed as that plugin would have
    removed them, then its record is dropped."""

    def load(self, container_id: str, ifname: str, netns: str, cni_version: str) -> Journal | None:
        """The journal of what the other plugin attached (entries in its order), or None.
        Raises CNIError when its record exists but cannot be read."""
        ...

    def remove(self, journal: Journal) -> None:
        """Drop the other plugin's record of this journal's container (best effort)."""
        ...


class ReleaseStore(Protocol):
    """Where a DEL records a network whose release it skipped (its delegates' DEL failed),
    for multinetd's GC to run again."""

    def record(self, journal: Journal, entry: Entry, error: CNIError) -> None:
        """Raises IOFailure when the record cannot be written."""
        ...


class Gate(Protocol):
    def shared(self, create: bool = True) -> AbstractContextManager[None]:
        """Held by what may allocate (ADD, a change of a running pod): a CNI GC waits."""
        ...
