"""The pod's network namespace as the engine sees it (engine.ports.PodNetns).

Listing interfaces uses setns(2) in a throwaway thread and /proc/thread-self:
no netlink library on the per-pod hot path. pyroute2 (~130 ms to import) is
loaded only by the operations that change routes (engine.netlink).
"""

from __future__ import annotations

import _thread
import functools
import os
from collections.abc import Callable, Sequence

from multinet.cni.errors import IOFailure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

if TYPE_CHECKING:
    from multinet.engine.routes import RoutePlan

CLONE_NEWNET = 0x40000000


@functools.cache
def _setns() -> Callable[[int, int], int]:
    import ctypes  # ~10 million instructions: only for a call that enters a namespace

    setns: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).setns
    return setns


def exists(path: str) -> bool:
    return bool(path) and os.path.exists(path)


def run_in(path: str, fn: Callable[[], T]) -> T:
    """Run fn in a new thread that has joined the network namespace at `path`. (A thread of
    `_thread`: `threading` costs thin mode's DEL ~7 million instructions to import.)"""
    box: dict[str, object] = {}
    done = _thread.allocate_lock()
    done.acquire()

    def target() -> None:
        try:
            _enter_and_run()
        finally:
            done.release()

    def _enter_and_run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            box["error"] = IOFailure(f"cannot open network namespace {path}", str(e))
            return
        try:
            if _setns()(fd, CLONE_NEWNET) != 0:
                import ctypes

                err = ctypes.get_errno()
                box["error"] = IOFailure(f"cannot enter network namespace {path}", os.strerror(err))
                return
            box["value"] = fn()
        except Exception as e:  # surfaced in the caller's thread
            box["error"] = e
        finally:
            os.close(fd)

    _thread.start_new_thread(target, ())
    done.acquire()  # released by the thread as it ends
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _read_names() -> set[str]:
    with open("/proc/thread-self/net/dev") as f:
        lines = f.readlines()[2:]
    return {line.split(":", 1)[0].strip() for line in lines}


def interface_names(path: str) -> set[str]:
    """Names of the interfaces in the network namespace at `path`."""
    return run_in(path, _read_names)


class HostNetns:
    """engine.ports.PodNetns on this host's kernel."""

    def exists(self, path: str) -> bool:
        return exists(path)

    def interface_names(self, path: str) -> set[str]:
        return interface_names(path)

    def apply_routes(self, path: str, plan: RoutePlan) -> None:
        from multinet.engine import netlink

        failure = "routes: cannot set the pod's routes (default-route, source routing)"
        _netlink(path, lambda: netlink.apply(plan), failure)

    def remove_links(self, path: str, names: Sequence[str]) -> None:
        from multinet.engine import netlink

        failure = f"cannot remove {', '.join(names)} from {path}"
        _netlink(path, lambda: netlink.delete_links(names), failure)


def _netlink(path: str, fn: Callable[[], None], failure: str) -> None:
    try:
        run_in(path, fn)
    except IOFailure:
        raise
    except Exception as e:  # netlink errors: say what failed, never a raw exception
        raise IOFailure(f"{failure}: {e}") from None
