"""multinetd's API client (cluster.shared) shared by many request threads: every request
answered, over at most POOL kept-alive connections, reused from one request to the next."""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from multinet.cluster import rest, shared
from multinet.cluster.base import STATUS_ANNOTATION
from multinet.cluster.http11 import Connection
from multinet.cluster.shared import POOL, SharedRestCluster
from multinet.cni.errors import TryAgainLater
from tests.support.kubeapi import KubeAPIServer, client_certificate

THREADS = 3 * POOL
ROUNDS = 4


@pytest.fixture(scope="module")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    return client_certificate(str(tmp_path_factory.mktemp("client-pki")))


@pytest.fixture
def mtls_kubeapi(client_pki: tuple[str, str, str]) -> Iterator[KubeAPIServer]:
    with KubeAPIServer(token="secret", client_ca_file=client_pki[0]) as server:
        yield server


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


def client_ports(port: int) -> set[int]:
    """The local ports of the established connections from 127.0.0.1 to `port`."""
    ports = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, remote, state = line.split()[1:4]
            if state == "01" and remote == f"0100007F:{port:04X}":
                ports.add(int(local.split(":")[1], 16))
    return ports


def fill_the_pool(api: SharedRestCluster) -> None:
    """POOL requests at once: POOL connections kept alive, idle."""
    start = threading.Barrier(POOL)

    def reader() -> None:
        start.wait()
        assert api.get_pod("default", "p") is not None

    threads = [threading.Thread(target=reader) for _ in range(POOL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)


def test_connections_the_server_closed_while_idle_are_not_used(
    kubeapi: KubeAPIServer, tmp_path: Path
) -> None:
    """An API server restart (or a load balancer's idle timeout) closes every idle
    connection of the pool: the next request goes on a new one, at once."""
    kubeapi.add_pod({"metadata": {"name": "p", "namespace": "default", "uid": str(uuid.uuid4())}})
    api = SharedRestCluster(kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig")), str(tmp_path))
    fill_the_pool(api)
    kubeapi.set_down(True)
    kubeapi.set_down(False)
    kubeapi.reset_requests()
    assert api.get_pod("default", "p") is not None
    assert len(kubeapi.requests) == 1  # not retried on one dead connection after another


def test_idle_connections_older_than_idle_max_are_not_reused(
    kubeapi: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "IDLE_MAX", 0.3)
    kubeapi.add_pod({"metadata": {"name": "p", "namespace": "default", "uid": str(uuid.uuid4())}})
    api = SharedRestCluster(kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig")), str(tmp_path))
    assert api.get_pod("default", "p") is not None
    assert api.get_pod("default", "p") is not None
    before = client_ports(kubeapi.port)
    assert len(before) == 1  # reused while young
    time.sleep(0.5)
    assert api.get_pod("default", "p") is not None
    after = client_ports(kubeapi.port)
    assert len(after) == 1 and after != before  # the old one closed, a new one opened


class SlowListServer:
    """A plain-HTTP API server stand-in whose lists take `delay` seconds."""

    def __init__(self, delay: float) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                time.sleep(delay)
                body = b'{"kind":"PodList","metadata":{"resourceVersion":"1"},"items":[]}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> str:
        server = f"http://127.0.0.1:{self.server.server_address[1]}"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": server}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        return str(path)


def test_a_list_is_read_for_longer_than_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list from etcd of a large cluster takes longer than a GET of one pod may."""
    monkeypatch.setattr(rest, "TIMEOUT", (3.0, 0.2))
    slow = SlowListServer(delay=0.6)
    try:
        api = SharedRestCluster(slow.kubeconfig(tmp_path / "kc"), str(tmp_path))
        with pytest.raises(TryAgainLater):
            api.get_pod("default", "p")  # a request: 0.2 s
        assert b'"PodList"' in api.list_json("/api/v1/pods?limit=500")
    finally:
        slow.server.shutdown()
        slow.server.server_close()


def test_credentials_are_read_again_only_when_they_change(
    mtls_kubeapi: KubeAPIServer,
    client_pki: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inline client-certificate data reaches ssl through a temporary file: rebuilt only
    when the kubeconfig changes, a read-only /tmp fails no request after the first."""
    _, cert, key = client_pki
    kc = tmp_path / "kc"
    user = {
        "client-certificate-data": base64.b64encode(Path(cert).read_bytes()).decode(),
        "client-key-data": base64.b64encode(Path(key).read_bytes()).decode(),
    }

    def write(token: str) -> None:
        mtls_kubeapi.write_kubeconfig(str(kc))
        doc = json.loads(kc.read_text())
        doc["users"][0]["user"] = {**user, "token": token} if token else user
        kc.write_text(json.dumps(doc))

    write("")
    api = SharedRestCluster(str(kc), str(tmp_path))
    mtls_kubeapi.add_pod({"metadata": {"name": "p", "namespace": "default", "uid": "u1"}})
    assert api.get_pod("default", "p") is not None
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "missing"))  # no temporary file
    for _ in range(3):
        assert api.get_pod("default", "p") is not None
    monkeypatch.setattr("tempfile.tempdir", None)
    mtls_kubeapi.token = "rotated"
    write("rotated")  # a change: read again, with the new token
    mtls_kubeapi.reset_requests()
    assert api.get_pod("default", "p") is not None
    assert mtls_kubeapi.request_count("GET") == 1


def test_a_status_write_on_a_connection_closed_as_it_goes_out_is_sent_again(
    kubeapi: KubeAPIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's close reaches us only after the connection was taken from the pool
    (the check at checkout passes): the PATCH goes once more on a new TLS connection."""
    kubeapi.add_pod({"metadata": {"name": "p", "namespace": "default", "uid": str(uuid.uuid4())}})
    api = SharedRestCluster(kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig")), str(tmp_path))
    pod = api.get_pod("default", "p")
    assert pod is not None
    kubeapi.set_down(True)
    kubeapi.set_down(False)
    monkeypatch.setattr(Connection, "dropped", lambda self: False)
    kubeapi.reset_requests()
    caplog.set_level(logging.INFO, logger="multinet")
    api.set_network_status(pod, [{"name": "default/net1", "interface": "net1"}])
    assert "transient failure" not in caplog.text  # at once, not after a backoff
    assert kubeapi.request_count("PATCH") == 1
    written = kubeapi.get_pod("default", "p")
    assert written is not None
    assert "net1" in written["metadata"]["annotations"][STATUS_ANNOTATION]
