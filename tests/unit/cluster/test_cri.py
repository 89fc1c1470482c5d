"""The container runtime's CRI client against a real grpcio server of the real proto:
every sandbox listed, host-network sandboxes told, and an answer that is not whole (an
error, a deadline passed, a sandbox without an ID) refused as code 11, never taken."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from multinet.cluster.cri import RuntimeClient, RuntimeSandbox
from multinet.cni.errors import TRY_AGAIN_LATER, CNIError
from multinet.daemon.gc import find_socket
from tests.support.cri import FakeRuntime


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[FakeRuntime]:
    with FakeRuntime(str(tmp_path / "cri.sock")) as fake:
        yield fake


def test_every_sandbox_is_listed_ready_or_not(runtime: FakeRuntime) -> None:
    runtime.run("c1", "ns1", "web")
    runtime.run("c2", "ns1", "db")
    runtime.stop_sandbox("c2")
    client = RuntimeClient(runtime.socket_path)
    try:
        got = client.sandboxes()
    finally:
        client.close()
    assert sorted(got, key=lambda s: s.id) == [
        RuntimeSandbox("c1", "ns1", "web", "uid-c1", ready=True),
        RuntimeSandbox("c2", "ns1", "db", "uid-c2", ready=False),
    ]
    assert runtime.calls == ["ListPodSandbox"]


def test_host_network_is_read_from_the_sandbox_status(runtime: FakeRuntime) -> None:
    runtime.run("pod", "ns1", "web")
    runtime.run("host", "kube-system", "multinet-x", host_network=True)
    client = RuntimeClient(runtime.socket_path)
    assert client.host_network("pod") is False
    assert client.host_network("host") is True
    assert client.host_network("gone") is None  # NOT_FOUND: removed since listed
    client.close()


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL])
def test_a_failing_runtime_is_try_again_later(
    runtime: FakeRuntime, status: grpc.StatusCode
) -> None:
    runtime.run("c1", "ns1", "web")
    runtime.fail = status
    client = RuntimeClient(runtime.socket_path)
    with pytest.raises(CNIError) as e:
        client.sandboxes()
    client.close()
    assert e.value.code == TRY_AGAIN_LATER
    assert runtime.socket_path in e.value.msg and status.name in e.value.msg


def test_a_runtime_past_the_deadline_is_try_again_later(runtime: FakeRuntime) -> None:
    runtime.run("c1", "ns1", "web")
    runtime.delay = 1.0
    client = RuntimeClient(runtime.socket_path, timeout=0.2)
    with pytest.raises(CNIError) as e:
        client.sandboxes()
    client.close()
    assert e.value.code == TRY_AGAIN_LATER and "DEADLINE_EXCEEDED" in e.value.msg


def test_a_sandbox_without_an_id_makes_the_whole_answer_refused(runtime: FakeRuntime) -> None:
    runtime.run("c1", "ns1", "web")
    runtime.empty_id = True
    client = RuntimeClient(runtime.socket_path)
    with pytest.raises(CNIError) as e:
        client.sandboxes()
    client.close()
    assert e.value.code == TRY_AGAIN_LATER and "without an ID" in e.value.msg


def test_nothing_listening_is_try_again_later(tmp_path: Path) -> None:
    client = RuntimeClient(str(tmp_path / "none.sock"), timeout=2)
    with pytest.raises(CNIError) as e:
        client.sandboxes()
    client.close()
    assert e.value.code == TRY_AGAIN_LATER and "UNAVAILABLE" in e.value.msg


def _socket_at(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


def test_the_default_sockets_are_looked_for_under_host_root(tmp_path: Path) -> None:
    with pytest.raises(CNIError) as e:
        find_socket("", str(tmp_path))
    assert e.value.code == TRY_AGAIN_LATER
    assert f"{tmp_path}/run/containerd/containerd.sock or {tmp_path}/var/run/crio/crio.sock" in (
        e.value.msg
    )
    crio = _socket_at(tmp_path / "var/run/crio/crio.sock")
    assert find_socket("", str(tmp_path)) == f"{tmp_path}/var/run/crio/crio.sock"
    containerd = _socket_at(tmp_path / "run/containerd/containerd.sock")
    with pytest.raises(CNIError) as e:  # which one the kubelet uses is not known
        find_socket("", str(tmp_path))
    assert "set gcRuntimeSocket" in e.value.msg
    # A configured one is the host's path, under hostRoot too.
    assert find_socket("/run/containerd/containerd.sock", str(tmp_path)) == (
        f"{tmp_path}/run/containerd/containerd.sock"
    )
    assert find_socket(str(tmp_path / "var/run/crio/crio.sock"), "") == str(
        tmp_path / "var/run/crio/crio.sock"
    )
    crio.close()
    containerd.close()


def test_a_file_that_is_not_a_socket_is_not_the_runtime(tmp_path: Path) -> None:
    (tmp_path / "run/containerd").mkdir(parents=True)
    (tmp_path / "run/containerd/containerd.sock").write_text("")
    with pytest.raises(CNIError):
        find_socket("", str(tmp_path))
