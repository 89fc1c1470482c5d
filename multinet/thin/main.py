"""The `multinet` CNI executable: environment + stdin in, result or error JSON out.

Thin mode: everything runs in this process, with the verbs the composition root
(meta.wiring) builds for the netconf. The error boundary is the dispatcher's
(meta.dispatch.run). Installed scripts import `main` from here (cli.install, pyproject).

The runtime waits for this process to exit, not only for its answer: the events an ADD
holds (cluster.apiserver) are posted by a detached child once the answer is written, as
multinetd posts them from a thread after answering. network-status is not an event: it is
written before the answer, and a failed write fails the ADD.
"""

from __future__ import annotations

import os
import sys

from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.meta import dispatch
from multinet.meta.verbs import Verbs

SHIM_TYPE = "multinet-shim"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from multinet.cluster.apiserver import ApiServer
    from multinet.cluster.base import Cluster


class ThinVerbs:
    """The verbs for a netconf in thin mode: logging set up for the call, its cluster
    source built; a context whose end closes the API connection, if one was opened."""

    def __init__(self) -> None:
        self.clusters: list[Cluster] = []

    def __enter__(self) -> ThinVerbs:
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.api_servers():
            server.close()  # posts the events still held

    def api_servers(self) -> list[ApiServer]:
        if not self.clusters:
            return []  # cluster.apiserver not imported: a DEL the journal answers
        from multinet.cluster.apiserver import ApiServer

        return [c for c in self.clusters if isinstance(c, ApiServer)]

    def send_events_detached(self) -> None:
        """Post the events held from a child the runtime does not wait for: its own session,
        stdin, stdout and stderr on /dev/null (libcni reads stdout to its end). Without
        fork, or when it fails, `__exit__` posts them here."""
        servers = [s for s in self.api_servers() if s.events]
        if not servers:
            return
        sys.stdout.flush()
        try:
            pid = os.fork()
        except OSError:
            return
        if pid:
            for server in servers:
                server.events.clear()  # the child's now
            return
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            for server in servers:
                server.close()
        finally:
            os._exit(0)

    def __call__(self, conf: NetConf, req: Request) -> Verbs:
        from multinet.config import logs
        from multinet.meta.wiring import cluster_for, verbs_for

        logs.configure(
            conf.log_level,
            conf.log_file,
            conf.log_to_stderr,
            context=f"container={req.container_id} ifname={req.ifname}",
            options=conf.log_options,
        )
        # Run by multinet-shim (its conflist's type) only when multinetd did not answer.
        cluster = cluster_for(conf, shim_fallback=conf.type == SHIM_TYPE)
        if cluster is not None:
            self.clusters.append(cluster)
        return verbs_for(conf, cluster)


def handle(req: Request) -> dict[str, Any] | None:
    """One parsed request answered in-process, as `main` answers it."""
    with ThinVerbs() as verbs_for:
        return dispatch.handle(req, verbs_for)


def main() -> None:
    stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    with ThinVerbs() as verbs_for:
        code = dispatch.serve(os.environ, stdin, sys.stdout, verbs_for)
        verbs_for.send_events_detached()
    sys.exit(code)


if __name__ == "__main__":
    main()
