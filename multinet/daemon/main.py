"""`multinetd --config FILE`: run the node daemon in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from types import FrameType

from multinet import __version__
from multinet.cni.errors import CNIError
from multinet.daemon import config, logfmt
from multinet.daemon.lifecycle import ClusterCache, Daemon

log = logging.getLogger("multinet.daemon")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multinetd", description=__doc__)
    p.add_argument(
        "--config",
        default=config.DEFAULT_CONFIG_FILE,
        help=f"daemon configuration, JSON (default {config.DEFAULT_CONFIG_FILE})",
    )
    p.add_argument("--version", action="version", version=f"multinetd {__version__}")
    return p


def shared_cluster(conf: config.DaemonConfig, environ: Mapping[str, str]) -> ClusterCache | None:
    """The watch-backed cache when the daemon talks to an API server: a `kubeconfig` in
    its configuration, or the pod's service account."""
    kubeconfig = str(conf.overrides.get("kubeconfig", ""))
    if conf.overrides.get("manifests") or not (
        kubeconfig or environ.get("KUBERNETES_SERVICE_HOST")
    ):
        return None
    from multinet.cluster.cache import CachedCluster
    from multinet.cluster.shared import watched_api

    return CachedCluster(watched_api(kubeconfig, conf.cni_dir), conf.node_name)


def main(argv: list[str] | None = None) -> None:
    """The process's one error boundary for start-up: every failure is one line on stderr
    (and in the log once it is set up) and exit status 2 (the configuration) or 1."""
    args = build_parser().parse_args(argv)
    try:
        conf = config.load_file(args.config, os.environ)
    except CNIError as e:
        print(f"multinetd: {e}", file=sys.stderr)
        sys.exit(2)
    logfmt.configure(conf.log_level, conf.log_file, conf.log_to_stderr)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("still finishing the requests in flight; send SIGKILL to abandon them")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon: Daemon | None = None
    try:
        daemon = Daemon(conf, cluster=shared_cluster(conf, os.environ))
        daemon.start()
    except (CNIError, OSError, ValueError) as e:  # ValueError: a path the OS refuses
        log.error("cannot start: %s", e)
        if not conf.log_to_stderr:
            print(f"multinetd: cannot start: {e}", file=sys.stderr)
        if daemon is not None:
            daemon.stop()
        sys.exit(1)
    while not stop.wait(1.0):
        pass
    daemon.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
