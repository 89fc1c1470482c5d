"""The container runtime's pod sandboxes, asked in a short-lived child process.

grpcio, once imported, stays in a process for its life: ~17 MiB of RSS (its core library,
its threads, protobuf) in multinetd for a query it makes every few minutes, and in a
DaemonSet whose memory limit must also hold a reboot's burst of delegates. So the daemon
never imports it: `RuntimeProcess(socket).sandboxes()` runs the CRI client
(cluster.cri) in a child interpreter, started the way the thin launcher is (`-I -S`,
the daemon's own sys.path given explicitly: no `site` pass), which asks the runtime and
prints its answer as JSON on stdout; its memory is returned when it exits.

The answer is all or nothing, as cluster.cri's is: the runtime's own failure (the child
prints the TryAgainLater it got, as a CNI error object), a child that does not finish
within its deadline (killed), that exits otherwise or prints what is not a whole answer,
are each TryAgainLater (code 11), and the GC that asks never takes a partial list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from multinet.cni.errors import TRY_AGAIN_LATER, TryAgainLater

# The runtimes' default sockets, in the order they are looked for: containerd's, CRI-O's.
DEFAULT_SOCKETS = ("/run/containerd/containerd.sock", "/var/run/crio/crio.sock")
TIMEOUT = 10.0  # seconds per call: the runtime answers from its in-memory store
# Seconds the child may take beyond its calls: an interpreter importing grpcio on a node
# busy starting its pods.
START_ALLOWANCE = 20.0
LIST = "list"
STATUS = "status"


@dataclass(frozen=True)
class RuntimeSandbox:
    """One pod sandbox as the runtime lists it; `id` is the CNI container ID."""

    id: str
    namespace: str
    name: str
    uid: str
    ready: bool


def child_command(python: str = sys.executable) -> list[str]:
    """The child interpreter: isolated and without `site` (every .pth, an editable
    install's finder), the daemon's sys.path and the directory `multinet` comes from
    added explicitly, as the thin launcher does (cli.install)."""
    import multinet

    root = os.path.dirname(os.path.dirname(os.path.abspath(multinet.__file__)))
    paths = [p for p in sys.path if p and os.path.isabs(p)]
    if root not in paths:
        paths.append(root)
    code = (
        f"import sys; sys.path += {paths!r}\n"
        "from multinet.cluster.cri import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return [python, "-I", "-S", "-c", code]


class RuntimeProcess:
    """The CRI RuntimeService on a unix socket, each query a child process of its own."""

    def __init__(
        self,
        socket_path: str,
        timeout: float = TIMEOUT,
        command: Sequence[str] | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.command = list(command) if command is not None else child_command()

    def sandboxes(self) -> list[RuntimeSandbox]:
        """Every pod sandbox the runtime has; TryAgainLater unless the answer is whole."""
        got = self._ask(LIST, [], calls=1).get("sandboxes")
        try:
            if not isinstance(got, list):
                raise TypeError("no list of sandboxes")
            return [
                RuntimeSandbox(
                    id=_str(s["id"]),
                    namespace=_str(s["namespace"]),
                    name=_str(s["name"]),
                    uid=_str(s["uid"]),
                    ready=_bool(s["ready"]),
                )
                for s in got
            ]
        except (KeyError, TypeError) as e:
            raise self._malformed(f"{type(e).__name__}: {e}") from None

    def host_networks(self, sandbox_ids: Sequence[str]) -> dict[str, bool | None]:
        """Whether each sandbox uses the node's network namespace; None for one the
        runtime no longer has (removed since it was listed). One child for them all."""
        if not sandbox_ids:
            return {}
        got = self._ask(STATUS, list(sandbox_ids), calls=len(sandbox_ids)).get("hostNetwork")
        if not isinstance(got, dict) or set(got) != set(sandbox_ids):
            raise self._malformed(f"hostNetwork does not answer {len(sandbox_ids)} sandbox(es)")
        if not all(v is None or isinstance(v, bool) for v in got.values()):
            raise self._malformed("hostNetwork values are not true, false or null")
        return dict(got)

    def close(self) -> None:
        """Nothing is held between queries."""

    def _ask(self, verb: str, args: list[str], calls: int) -> dict[str, Any]:
        argv = [*self.command, verb, self.socket_path, str(self.timeout), *args]
        deadline = START_ALLOWANCE + self.timeout * calls
        try:
            out = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=deadline,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TryAgainLater(
                f"the CRI query of {self.socket_path} did not finish in {deadline:g} s: "
                "its process was killed"
            ) from None
        except OSError as e:
            raise TryAgainLater(
                f"the CRI query of {self.socket_path} could not be started: {e.strerror}"
            ) from None
        try:
            answer = json.loads(out.stdout)
        except ValueError:
            answer = None
        if out.returncode != 0:
            if (
                isinstance(answer, dict)
                and answer.get("code") == TRY_AGAIN_LATER
                and isinstance(answer.get("msg"), str)
            ):
                raise TryAgainLater(answer["msg"], str(answer.get("details", "")))
            last = (out.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            how = (
                f"was killed by signal {-out.returncode}"
                if out.returncode < 0
                else (f"exited {out.returncode}")
            )
            raise TryAgainLater(f"the CRI query of {self.socket_path} {how}", last)
        if not isinstance(answer, dict):
            raise self._malformed(f"not a JSON object: {out.stdout[:80]!r}")
        return answer

    def _malformed(self, why: str) -> TryAgainLater:
        return TryAgainLater(
            f"the CRI query of {self.socket_path} answered what is not a whole answer: "
            "it is not taken",
            why,
        )


def _str(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{v!r} is not a string")
    return v


def _bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{v!r} is not a boolean")
    return v
