"""Running delegates for the engine: the real executor, and one-by-one or all-at-once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from multinet.cni import chain
from multinet.cni.chain import NetworkConfig
from multinet.cni.exec import Invocation
from multinet.record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")
    R = TypeVar("R")


class ChainExecutor:
    """engine.ports.Executor over the real plugins: libcni's semantics (cni.chain). With a
    `root` (the netconf's hostRoot), every delegate runs chrooted into it."""

    def __init__(self, root: str = "") -> None:
        self.root = root

    def _inv(self, inv: Invocation) -> Invocation:
        return replace(inv, root=self.root) if self.root else inv

    def add(
        self, net: NetworkConfig, inv: Invocation, runtime_config: Mapping[str, Any]
    ) -> dict[str, Any]:
        return chain.add(net, self._inv(inv), runtime_config)

    def delete(
        self,
        net: NetworkConfig,
        inv: Invocation,
        runtime_config: Mapping[str, Any],
        prev_result: Mapping[str, Any] | None,
    ) -> None:
        chain.delete(net, self._inv(inv), runtime_config, prev_result)

    def check(
        self,
        net: NetworkConfig,
        inv: Invocation,
        runtime_config: Mapping[str, Any],
        prev_result: Mapping[str, Any] | None,
    ) -> None:
        chain.check(net, self._inv(inv), runtime_config, prev_result)

    def gc(self, net: NetworkConfig, inv: Invocation, valid: Sequence[Mapping[str, str]]) -> None:
        chain.gc(net, self._inv(inv), valid)

    def status(self, net: NetworkConfig, inv: Invocation) -> None:
        chain.status(net, self._inv(inv))


def each(fn: Callable[[T], R], items: Sequence[T], parallel: bool) -> list[R]:
    """fn over items, results in order; in one thread each when `parallel`."""
    if not parallel or len(items) < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor  # only parallelAttach pays

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))
