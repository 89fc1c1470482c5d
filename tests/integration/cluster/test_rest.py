"""cluster.rest (the standard-library API client) against the Kubernetes API test server
over HTTPS: every supported credential form, TLS failures, the error mapping and the
retries, the UID precondition; the error mapping also through cluster.kube (parity)."""

from __future__ import annotations

import base64
import json
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from multinet.cluster.api import ATTEMPTS, ApiCluster
from multinet.cluster.apiserver import api_cluster
from multinet.cluster.base import STATUS_ANNOTATION, Pod
from multinet.cluster.kube import KubeCluster
from multinet.cluster.rest import RestCluster
from multinet.cni.errors import ClusterError, CNIError, TryAgainLater
from tests.support.kubeapi import KubeAPIServer, client_certificate
from tests.support.kubeapi_faults import Body, CutShort, Fault, Truncated

NS, NAME, UID = "default", "web", "uid-1"
NAD_CONFIG = '{"cniVersion":"1.0.0","type":"bridge"}'


def seed(api: KubeAPIServer) -> None:
    api.add_pod(
        {
            "metadata": {"name": NAME, "namespace": NS, "uid": UID, "annotations": {"a": "b"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
        }
    )
    api.add_nad({"metadata": {"name": "lab", "namespace": NS}, "spec": {"config": NAD_CONFIG}})


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any] | None = None) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(json.dumps(doc))
    return str(path)


def b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


@pytest.fixture
def api() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(token="secret") as server:
        seed(server)
        yield server


@pytest.fixture(scope="module")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    return client_certificate(str(tmp_path_factory.mktemp("client-pki")))


@pytest.fixture
def mtls_api(client_pki: tuple[str, str, str]) -> Iterator[KubeAPIServer]:
    with KubeAPIServer(token="secret", client_ca_file=client_pki[0]) as server:
        seed(server)
        yield server


def reads(cluster: ApiCluster) -> None:
    pod = cluster.get_pod(NS, NAME)
    assert pod == Pod(NS, NAME, UID, {"a": "b"}, "n1")
    nad = cluster.get_nad(NS, "lab")
    assert nad is not None and nad.config == NAD_CONFIG
    assert cluster.get_pod(NS, "absent") is None
    assert cluster.get_nad(NS, "absent") is None


# -- credentials and TLS -------------------------------------------------------------


def test_token_and_ca_file_one_kept_alive_connection(api: KubeAPIServer, tmp_path: Path) -> None:
    cluster = RestCluster(api.write_kubeconfig(str(tmp_path / "kc")), str(tmp_path))
    assert cluster.get_pod(NS, NAME) is not None
    assert cluster._conn is not None and cluster._conn.sock is not None
    sock = cluster._conn.sock
    assert (cluster._conn.connect_timeout, sock.gettimeout()) == (3.0, 10.0)  # connect, read
    reads(cluster)
    pod = cluster.get_pod(NS, NAME)
    assert pod is not None
    cluster.set_network_status(pod, [{"name": "cluster", "interface": "eth0"}])
    cluster.emit_event(pod, "AddedInterface", "eth0 added")
    assert cluster._conn.sock is sock  # the same connection for every request
    cluster.close()
    assert cluster._conn is None
    stored = api.get_pod(NS, NAME)
    assert stored is not None
    status = json.loads(stored["metadata"]["annotations"][STATUS_ANNOTATION])
    assert status == [{"name": "cluster", "interface": "eth0"}]
    assert [e["reason"] for e in api.events()] == ["AddedInterface"]
    assert cluster.network_status(NS, NAME) == status  # reconnects after close()


def test_token_file_read_at_construction(api: KubeAPIServer, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("stale\n")
    kc = kubeconfig(
        tmp_path / "kc",
        {"server": api.url, "certificate-authority": api.ca_file},
        {"tokenFile": "token"},
    )
    with pytest.raises(ClusterError, match=r"refused access \(401"):
        RestCluster(kc, str(tmp_path)).get_pod(NS, NAME)
    token.write_text("secret\n")  # the projected token rotated
    reads(RestCluster(kc, str(tmp_path)))


def test_ca_data_inline_and_insecure(api: KubeAPIServer, tmp_path: Path) -> None:
    inline = kubeconfig(
        tmp_path / "inline",
        {"server": api.url, "certificate-authority-data": b64(api.ca_file)},
        {"token": "secret"},
    )
    reads(RestCluster(inline, str(tmp_path)))
    insecure = kubeconfig(
        tmp_path / "insecure",
        {"server": api.url, "insecure-skip-tls-verify": True},
        {"token": "secret"},
    )
    reads(RestCluster(insecure, str(tmp_path)))


def test_client_certificate_files(
    mtls_api: KubeAPIServer, client_pki: tuple[str, str, str], tmp_path: Path
) -> None:
    _, cert, key = client_pki
    cluster = {"server": mtls_api.url, "certificate-authority": mtls_api.ca_file}
    kc = kubeconfig(tmp_path / "kc", cluster, {"client-certificate": cert, "client-key": key})
    reads(RestCluster(kc, str(tmp_path)))
    # Without it (and without a token), the server does not know us.
    anonymous = kubeconfig(tmp_path / "anon", cluster)
    with pytest.raises(ClusterError, match=r"refused access \(401 Unauthorized") as info:
        RestCluster(anonymous, str(tmp_path)).get_pod(NS, NAME)
    assert info.value.code == 101


def test_client_certificate_data_leaves_no_file(
    mtls_api: KubeAPIServer,
    client_pki: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, cert, key = client_pki
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    modes: list[int] = []
    import ssl

    real = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, *args: Any, **kwargs: Any) -> None:
        modes.append(stat.S_IMODE(Path(certfile).stat().st_mode))
        real(self, certfile, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    kc = kubeconfig(
        tmp_path / "kc",
        {"server": mtls_api.url, "certificate-authority-data": b64(mtls_api.ca_file)},
        {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
    )
    reads(RestCluster(kc, str(tmp_path)))
    assert modes == [0o600]
    assert list(scratch.iterdir()) == []  # removed right after loading


@pytest.mark.parametrize("kind", [RestCluster, KubeCluster], ids=["rest", "kube"])
def test_wrong_ca_is_a_permanent_error(
    api: KubeAPIServer, tmp_path: Path, kind: type[ApiCluster]
) -> None:
    other_ca, _, _ = client_certificate(str(tmp_path / "other"))  # a CA that signed no server
    cluster = {"server": api.url, "certificate-authority": other_ca}
    kc = kubeconfig(tmp_path / "kc", cluster, {"token": "secret"})
    client = kind(kc, str(tmp_path))
    start = time.monotonic()
    with pytest.raises(ClusterError, match="certificate is not trusted") as info:
        client.get_pod(NS, NAME)
    assert info.value.code == 101
    assert info.value.details == "unable to get local issuer certificate"
    if kind is RestCluster:
        assert time.monotonic() - start < 0.2  # not retried (the other imports its client)
    assert api.request_count() == 0


def test_in_cluster_service_account(
    api: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "sa"
    root.mkdir()
    (root / "token").write_text("secret")
    (root / "ca.crt").write_bytes(Path(api.ca_file).read_bytes())
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
    reads(RestCluster("", str(tmp_path), service_account=str(root)))


def test_plain_http(tmp_path: Path) -> None:
    with KubeAPIServer(token="secret", tls=False) as api:
        seed(api)
        reads(RestCluster(api.write_kubeconfig(str(tmp_path / "kc")), str(tmp_path)))


def test_unreadable_kubeconfig_fails_only_on_use(tmp_path: Path) -> None:
    cluster = api_cluster(str(tmp_path / "absent"), str(tmp_path))
    assert isinstance(cluster, RestCluster)
    with pytest.raises(ClusterError, match="cannot load kubeconfig"):
        cluster.get_pod(NS, NAME)


def test_exec_plugin_falls_back_to_the_kubernetes_client(
    api: KubeAPIServer, tmp_path: Path
) -> None:
    plugin = tmp_path / "credential"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "secret"},
    }
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)
    exec_ = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": str(plugin),
        "interactiveMode": "Never",
    }
    kc = kubeconfig(
        tmp_path / "kc", {"server": api.url, "certificate-authority": api.ca_file}, {"exec": exec_}
    )
    cluster = api_cluster(kc, str(tmp_path))
    assert isinstance(cluster, KubeCluster)
    reads(cluster)


# -- error mapping, through both clients ---------------------------------------------------


@pytest.fixture(params=["rest", "kube"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[KubeAPIServer], ApiCluster]:
    kind = {"rest": RestCluster, "kube": KubeCluster}[request.param]
    return lambda api: kind(api.write_kubeconfig(str(tmp_path / "kc")), str(tmp_path))


@pytest.mark.parametrize(
    ("status", "error", "message", "requests"),
    [
        (401, ClusterError, "API server refused access (401 Unauthorized)", 1),
        (403, ClusterError, "API server refused access (403 Forbidden)", 1),
        (409, ClusterError, "API server answered 409 Conflict", 1),
        (422, ClusterError, "API server answered 422 Unprocessable Entity", 1),
        (429, TryAgainLater, "API server answered 429 Too Many Requests", ATTEMPTS),
        (500, TryAgainLater, "API server answered 500 Internal Server Error", ATTEMPTS),
    ],
)
def test_status_mapping(
    api: KubeAPIServer,
    make: Callable[[KubeAPIServer], ApiCluster],
    status: int,
    error: type[CNIError],
    message: str,
    requests: int,
) -> None:
    cluster = make(api)
    api.fail_next(10, status, path_contains="/pods/web")
    with pytest.raises(error) as info:
        cluster.get_pod(NS, NAME)
    assert info.value.msg == f"get pod {NS}/{NAME}: {message}" + (
        "; check the kubeconfig credentials and RBAC" if status in (401, 403) else ""
    )
    assert info.value.details  # the Status body's message
    assert api.request_count("GET", "/pods/web") == requests


def test_transient_then_success(
    api: KubeAPIServer, make: Callable[[KubeAPIServer], ApiCluster]
) -> None:
    api.fail_next(ATTEMPTS - 1, 503, path_contains="/pods/web")
    assert make(api).get_pod(NS, NAME) is not None
    assert api.request_count("GET", "/pods/web") == ATTEMPTS


def test_connection_refused_after_the_retries(
    api: KubeAPIServer, make: Callable[[KubeAPIServer], ApiCluster]
) -> None:
    cluster = make(api)
    api.set_down(True)
    start = time.monotonic()
    with pytest.raises(TryAgainLater, match="API server unreachable") as info:
        cluster.get_pod(NS, NAME)
    assert info.value.code == 11
    assert "(connection refused, 3 attempts)" in info.value.msg
    assert 0.55 < time.monotonic() - start < 3  # backoff 0.2 + 0.4 between 3 attempts


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        (CutShort(reset=True), TryAgainLater, "API server unreachable ("),
        (CutShort(), TryAgainLater, "API server unreachable ("),
        (Truncated(), ClusterError, "the API server sent invalid JSON"),
        (Body(200, b"<html></html>", "text/html"), ClusterError, "sent invalid JSON"),
        (Body(502, b"<html>Bad Gateway</html>", "text/html"), TryAgainLater, "502 Bad Gateway"),
    ],
)
def test_broken_answers(
    api: KubeAPIServer,
    make: Callable[[KubeAPIServer], ApiCluster],
    fault: Fault,
    error: type[CNIError],
    words: str,
) -> None:
    api.inject(fault, path_contains="/pods/web")
    with pytest.raises(error) as info:
        make(api).get_pod(NS, NAME)
    assert info.value.msg.startswith(f"get pod {NS}/{NAME}: ") and words in info.value.msg
    attempts = ATTEMPTS if error is TryAgainLater else 1
    assert api.request_count("GET", "/pods/web") == attempts


def test_another_object_in_a_200_is_no_answer(
    api: KubeAPIServer, make: Callable[[KubeAPIServer], ApiCluster]
) -> None:
    """A 200 holding another object (a caching proxy's mix-up): not the pod asked for."""
    other = json.dumps({"metadata": {"name": "other", "namespace": NS, "uid": "u-2"}}).encode()
    api.inject(Body(200, other), path_contains="/pods/web")
    with pytest.raises(ClusterError) as info:
        make(api).get_pod(NS, NAME)
    assert info.value.msg == (
        f"get pod {NS}/{NAME}: the API server answered with another object ({NS}/other)"
    )


def test_cut_connection_is_retried_on_a_new_one(api: KubeAPIServer, tmp_path: Path) -> None:
    cluster = RestCluster(api.write_kubeconfig(str(tmp_path / "kc")), str(tmp_path))
    assert cluster.get_pod(NS, NAME) is not None
    api.set_down(True)
    api.set_down(False)  # the kept-alive connection was cut
    assert cluster.get_nad(NS, "lab") is not None


def test_status_write_carries_the_uid_precondition(
    api: KubeAPIServer, make: Callable[[KubeAPIServer], ApiCluster]
) -> None:
    cluster = make(api)
    replaced = Pod(NS, NAME, "uid-of-the-old-pod")
    with pytest.raises(ClusterError) as info:
        cluster.set_network_status(replaced, [{"name": "x"}])
    assert "422" in info.value.msg and "immutable" in info.value.details
    stored = api.get_pod(NS, NAME)
    assert stored is not None and STATUS_ANNOTATION not in stored["metadata"]["annotations"]
    with pytest.raises(ClusterError, match="the pod no longer exists"):
        cluster.set_network_status(Pod(NS, "gone", "u"), [])
    cluster.set_network_status(Pod(NS, NAME, UID), [{"name": "x"}])
    assert api.request_count("PATCH", "/pods/web/status") == 2


def test_events_are_best_effort(
    api: KubeAPIServer, make: Callable[[KubeAPIServer], ApiCluster]
) -> None:
    api.fail_next(1, 500, path_contains="/events", method="POST")
    make(api).emit_event(Pod(NS, NAME, UID), "AddedInterface", "m")  # no exception
    assert api.request_count("POST", "/events") == 1  # and no retry
