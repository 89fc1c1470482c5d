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


def handle(req: Request) -> dict[str, Any] | None:
    """Dispatch one parsed request in-process (thin mode); the API connection, if one
    was opened, is closed at the end."""
    clusters: list[Cluster] = []

    def verbs(conf: NetConf, req: Request) -> Verbs:
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
            clusters.append(cluster)
        return verbs_for(conf, cluster)

    try:
        return dispatch.handle(req, verbs)
    finally:
        if clusters:
            from multinet.cluster.apiserver import ApiServer

            for cluster in clusters:
                if isinstance(cluster, ApiServer):
                    cluster.close()


def main() -> None:
    stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    sys.exit(dispatch.run(os.environ, stdin, sys.stdout, handle))


if __name__ == "__main__":
    main()
