"""multinetd's API client (cluster.shared) shared by many request threads: every request
answered, over at most POOL kept-alive connections, reused from one request to the next."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from multinet.cluster.shared import POOL, SharedRestCluster
from tests.support.kubeapi import KubeAPIServer

THREADS = 3 * POOL
ROUNDS = 4


def client_connections(port: int) -> int:
    """Established TCP connections from 127.0.0.1 to `port` (the client ends)."""
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            remote, state = line.split()[2:4]
            if state == "01" and remote == f"0100007F:{port:04X}":
                count += 1
    return count


def test_threads_share_a_bounded_pool_of_kept_alive_connections(
    kubeapi: KubeAPIServer, tmp_path: Path
) -> None:
    kubeapi.add_pod({"metadata": {"name": "p", "namespace": "default", "uid": str(uuid.uuid4())}})
    api = SharedRestCluster(kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig")), str(tmp_path))
    start = threading.Barrier(THREADS)
    found: list[bool] = []

    def reader() -> None:
        start.wait()
        for _ in range(ROUNDS):
            found.append(api.get_pod("default", "p") is not None)

    threads = [threading.Thread(target=reader) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert found == [True] * (THREADS * ROUNDS)
    port = int(kubeapi.url.rsplit(":", 1)[1])
    assert 1 <= client_connections(port) <= POOL  # the idle ones, kept alive
    kubeapi.reset_requests()
    assert api.get_pod("default", "p") is not None
    assert client_connections(port) <= POOL  # an idle one reused, none opened
