"""Credentials that rotate, through every API client: cluster.rest (thin mode's),
cluster.shared (multinetd's) and cluster.kube (the official client, for the kubeconfig
forms only it implements), against the API test server's tokens that expire.

A token file is trimmed; it is read again when it changed (the kubelet's atomic rename)
before the next request, and after a 401 whatever its stamp says, the request then sent
once more; a watch refused 401 reconnects with the new token from its resourceVersion;
client certificates replaced on disk are used by the next connection."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from multinet.cluster.api import ApiCluster
from multinet.cluster.cache import CachedCluster
from multinet.cluster.kube import KubeCluster
from multinet.cluster.rest import RestCluster
from multinet.cluster.shared import SharedRestCluster
from multinet.cni.errors import ClusterError, CNIError
from tests.support.kubeapi import KubeAPIServer, client_certificate

CLIENTS = ["rest", "shared", "kube"]
NS = "default"


def replace(path: Path, text: str | bytes) -> None:
    """Rewrite `path` as the kubelet does: a new file, renamed over the old one."""
    new = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    new.write_bytes(text.encode() if isinstance(text, str) else text)
    os.rename(new, path)


def rewrite_unnoticed(path: Path, text: str) -> None:
    """Rewrite `path` in place with as many bytes and its old mtime: its stamp (inode,
    size, mtime) unchanged, as on a filesystem with coarse timestamps; only a 401 tells."""
    st = path.stat()
    assert len(text.encode()) == st.st_size
    with open(path, "r+") as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def kubeconfig(api: KubeAPIServer, path: Path, user: dict[str, Any]) -> str:
    api.write_kubeconfig(str(path))
    doc = json.loads(path.read_text())
    doc["users"][0]["user"] = user
    path.write_text(json.dumps(doc))
    return str(path)


def client(kind: str, kc: str, tmp_path: Path) -> Any:
    if kind == "rest":
        return RestCluster(kc, str(tmp_path))
    if kind == "shared":
        return SharedRestCluster(kc, str(tmp_path))
    return KubeCluster(kc, state_dir=str(tmp_path))


@pytest.fixture
def seeded(kubeapi: KubeAPIServer) -> KubeAPIServer:
    kubeapi.add_pod({"metadata": {"name": "p", "namespace": NS, "uid": "u1"}})
    return kubeapi


def gets(kubeapi: KubeAPIServer) -> int:
    return kubeapi.request_count("GET", "/pods/p")


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_token_file_ending_in_a_newline_is_trimmed(
    seeded: KubeAPIServer, tmp_path: Path, kind: str
) -> None:
    """As `echo` writes it (the official client sent it whole: `ValueError: Invalid
    header value`, every thick-mode ADD and DEL a code 999)."""
    token = tmp_path / "token"
    token.write_text(seeded.token + "\n")
    api: ApiCluster = client(
        kind, kubeconfig(seeded, tmp_path / "kc", {"tokenFile": "token"}), tmp_path
    )
    for _ in range(2):  # the official client's own refresh hook runs before each request
        assert api.get_pod(NS, "p") is not None


@pytest.mark.parametrize("kind", [*CLIENTS, "in-cluster"])
def test_a_rotated_token_file_is_used_by_the_next_request(
    seeded: KubeAPIServer, tmp_path: Path, kind: str
) -> None:
    first = seeded.mint_token(60)
    if kind == "in-cluster":
        sa = tmp_path / "serviceaccount"
        sa.mkdir()
        shutil.copy(seeded.ca_file, sa / "ca.crt")
        token = sa / "token"
        token.write_text(first)
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(seeded.port)}
        api: ApiCluster = RestCluster("", str(tmp_path), service_account=str(sa), environ=env)
    else:
        token = tmp_path / "token"
        token.write_text(first)
        api = client(kind, kubeconfig(seeded, tmp_path / "kc", {"tokenFile": "token"}), tmp_path)
    assert api.get_pod(NS, "p") is not None
    replace(token, seeded.mint_token(60) + "\n")
    seeded.revoke_token(first)
    seeded.reset_requests()
    assert api.get_pod(NS, "p") is not None
    assert gets(seeded) == 1  # read before the request: no 401 first


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_401_reads_the_token_again_and_sends_the_request_once_more(
    seeded: KubeAPIServer, tmp_path: Path, kind: str
) -> None:
    token = tmp_path / "token"
    token.write_text(seeded.token)
    api: ApiCluster = client(
        kind, kubeconfig(seeded, tmp_path / "kc", {"tokenFile": "token"}), tmp_path
    )
    assert api.get_pod(NS, "p") is not None
    seeded.token = secrets.token_hex(16)  # the old one refused from now on
    rewrite_unnoticed(token, seeded.token)
    seeded.reset_requests()
    assert api.get_pod(NS, "p") is not None
    assert gets(seeded) == 2  # refused, then sent again with the token read after the 401


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_401_with_the_same_credentials_is_refused_at_once(
    seeded: KubeAPIServer, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "token").write_text("not-the-token")
    api: ApiCluster = client(
        kind, kubeconfig(seeded, tmp_path / "kc", {"tokenFile": "token"}), tmp_path
    )
    with pytest.raises(ClusterError, match="refused access"):
        api.get_pod(NS, "p")
    assert gets(seeded) == 1  # read again, unchanged: not sent again


def eventually(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture(params=["shared", "kube"])
def watching(
    kubeapi: KubeAPIServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[CachedCluster, Path]]:
    """The daemon's caches on a token file, synced and watching."""
    token = tmp_path / "token"
    token.write_text(kubeapi.token)
    kc = kubeconfig(kubeapi, tmp_path / "kc", {"tokenFile": "token"})
    cached = CachedCluster(client(request.param, kc, tmp_path), "node-a")
    try:
        assert cached.start(wait=10)
        assert kubeapi.wait_for_watchers(2, timeout=10)
        yield cached, token
    finally:
        cached.close()


def nad(name: str) -> dict[str, Any]:
    config = {"cniVersion": "1.0.0", "name": name, "type": "bridge"}
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"config": json.dumps(config)}}


def test_a_watch_refused_401_reconnects_with_the_new_token_from_its_resource_version(
    kubeapi: KubeAPIServer, watching: tuple[CachedCluster, Path]
) -> None:
    cached, token = watching
    kubeapi.add_nad(nad("before"))
    eventually(lambda: cached.nads.get(NS, "before") is not None)
    rv = kubeapi.resource_version
    kubeapi.token = secrets.token_hex(16)
    rewrite_unnoticed(token, kubeapi.token)
    kubeapi.reset_requests()
    kubeapi.end_watches()  # the server's timeout: both watch again, with the old token
    assert kubeapi.wait_for_watchers(2, timeout=10)
    kubeapi.add_nad(nad("after"))
    eventually(lambda: cached.nads.get(NS, "after") is not None)
    watches = [p for _, p in kubeapi.requests if "watch=true" in p]
    assert len(watches) == 4  # each refused once, then sent again at once
    nads = [p for p in watches if "network-attachment-definitions" in p]
    pods = [p for p in watches if p not in nads]
    assert len(nads) == len(pods) == 2
    assert all(f"resourceVersion={rv}&" in p for p in nads)  # resumed where it was
    assert pods[0] == pods[1]
    assert not [p for _, p in kubeapi.requests if "watch=true" not in p and "limit=" in p]
    assert cached.nads.relists == cached.pods.relists == 1


@pytest.fixture(scope="module")
def two_client_cas(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    """(ca, cert, key) of two client CAs: the server trusts the first."""
    return [client_certificate(str(tmp_path_factory.mktemp(f"client-pki{i}"))) for i in (1, 2)]


@pytest.mark.parametrize("kind", CLIENTS)
def test_client_certificate_files_replaced_on_disk_are_used_by_new_connections(
    two_client_cas: list[tuple[str, str, str]], tmp_path: Path, kind: str
) -> None:
    (trusted_ca, *trusted), (_, *untrusted) = two_client_cas
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"

    def install(pair: list[str]) -> None:
        replace(cert, Path(pair[0]).read_bytes())
        replace(key, Path(pair[1]).read_bytes())

    with KubeAPIServer(token="unused", client_ca_file=trusted_ca) as server:
        server.add_pod({"metadata": {"name": "p", "namespace": NS, "uid": "u1"}})
        install(trusted)
        user = {"client-certificate": str(cert), "client-key": str(key)}
        api: ApiCluster = client(kind, kubeconfig(server, tmp_path / "kc", user), tmp_path)
        assert api.get_pod(NS, "p") is not None
        install(untrusted)  # the kept-alive connection would still work: not used
        with pytest.raises(CNIError):
            api.get_pod(NS, "p")
        install(trusted)
        assert api.get_pod(NS, "p") is not None


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_node_event_refused_401_is_sent_again_with_the_rotated_token(
    seeded: KubeAPIServer, tmp_path: Path, kind: str
) -> None:
    """multinetd's CNIConfigRestored Event goes through the same 401 path as any request."""
    token = tmp_path / "token"
    token.write_text(seeded.token)
    api: ApiCluster = client(
        kind, kubeconfig(seeded, tmp_path / "kc", {"tokenFile": "token"}), tmp_path
    )
    assert api.get_pod(NS, "p") is not None
    seeded.token = secrets.token_hex(16)
    rewrite_unnoticed(token, seeded.token)
    api.emit_node_event("node-1", "CNIConfigRestored", "put back", warning=True)
    assert [e["reason"] for e in seeded.events()] == ["CNIConfigRestored"]
