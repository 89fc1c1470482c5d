"""The `multinet` CNI executable: environment + stdin in, result or error JSON out.

Thin mode: everything runs in this process, with the verbs the composition root
(meta.wiring) builds for the netconf. The error boundary is the dispatcher's
(meta.dispatch.run). Installed scripts import `main` from here (cli.install, pyproject).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from multinet.cluster.base import Cluster
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.meta import dispatch
from multinet.meta.verbs import Verbs


class ThinVerbs:
    """The verbs for a netconf in thin mode: logging set up for the call, its cluster
    source built; a context whose end closes the API connection, if one was opened."""

    def __init__(self) -> None:
        self.clusters: list[Cluster] = []

    def __enter__(self) -> ThinVerbs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.clusters:
            from multinet.cluster.apiserver import ApiServer

            for cluster in self.clusters:
                if isinstance(cluster, ApiServer):
                    cluster.close()

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
        cluster = cluster_for(conf)
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
    sys.exit(code)


if __name__ == "__main__":
    main()
