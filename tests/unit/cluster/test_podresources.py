"""The kubelet client: Get, List when Get is UNIMPLEMENTED, the checkpoint fallback, errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from multinet.cluster.base import Pod
from multinet.cluster.podresources import KubeletDevices, PodResourcesClient, read_checkpoint
from multinet.cni.errors import DECODE_FAILURE, IO_FAILURE, TRY_AGAIN_LATER, CNIError
from tests.support.kubelet import FakeKubelet

POD = Pod("default", "web", "uid-1")
RESOURCE = "intel.com/sriov_netdevice"


@pytest.fixture
def sock(tmp_path: Path) -> str:
    return str(tmp_path / "kubelet.sock")


def test_get_returns_the_pods_devices_of_every_container(sock: str) -> None:
    with FakeKubelet(sock) as kubelet:
        kubelet.assign("default", "web", RESOURCE, ["0000:03:02.3", "0000:03:02.1"])
        kubelet.assign("default", "web", RESOURCE, ["0000:03:02.2"], container="sidecar")
        kubelet.assign("default", "web", "nvidia.com/gpu", ["GPU-1"])
        kubelet.assign("default", "other", RESOURCE, ["0000:03:02.4"])
        devices = KubeletDevices(sock, "/nonexistent").for_pod(POD)
        assert kubelet.calls == ["Get"]
    assert devices == {
        RESOURCE: ["0000:03:02.3", "0000:03:02.1", "0000:03:02.2"],
        "nvidia.com/gpu": ["GPU-1"],
    }


def test_list_when_the_kubelet_does_not_serve_get_and_get_is_not_asked_again(sock: str) -> None:
    with FakeKubelet(sock, serve_get=False) as kubelet:
        kubelet.assign("default", "web", RESOURCE, ["0000:03:02.1"])
        kubelet.assign("default", "db", RESOURCE, ["0000:03:02.2"])
        client = PodResourcesClient(sock)
        assert client.devices(POD) == {RESOURCE: ["0000:03:02.1"]}
        assert client.devices(Pod("default", "db", "u")) == {RESOURCE: ["0000:03:02.2"]}
        client.close()
        assert kubelet.calls == ["Get", "List", "List"]


def test_a_pod_the_kubelet_does_not_know_has_no_devices_through_list(sock: str) -> None:
    with FakeKubelet(sock, serve_get=False):
        assert PodResourcesClient(sock).devices(POD) == {}


def test_an_unreachable_kubelet_is_try_again_later(sock: str) -> None:
    # A socket file nobody listens on: the kubelet is restarting.
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock)
    s.close()
    with pytest.raises(CNIError) as e:
        KubeletDevices(sock, "/nonexistent").for_pod(POD)
    assert e.value.code == TRY_AGAIN_LATER
    assert sock in e.value.msg


def checkpoint(tmp_path: Path, entries: object) -> str:
    path = tmp_path / "kubelet_internal_checkpoint"
    path.write_text(json.dumps({"Data": {"PodDeviceEntries": entries}, "Checksum": 1}))
    return str(path)


def test_the_checkpoint_when_the_socket_is_absent(tmp_path: Path, sock: str) -> None:
    path = checkpoint(
        tmp_path,
        [
            # 1.20+: DeviceIDs by NUMA node
            {"PodUID": "uid-1", "ContainerName": "app", "ResourceName": RESOURCE,
             "DeviceIDs": {"1": ["0000:03:02.2"], "0": ["0000:03:02.1"]}},
            # older kubelets: a list
            {"PodUID": "uid-1", "ContainerName": "b", "ResourceName": "x/y", "DeviceIDs": ["a"]},
            {"PodUID": "uid-2", "ContainerName": "app", "ResourceName": RESOURCE,
             "DeviceIDs": ["0000:03:02.9"]},
        ],
    )  # fmt: skip
    assert KubeletDevices(sock, path).for_pod(POD) == {
        RESOURCE: ["0000:03:02.1", "0000:03:02.2"],
        "x/y": ["a"],
    }


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"Data": {}}),
        json.dumps({"Data": {"PodDeviceEntries": [{"PodUID": "uid-1"}]}}),
        json.dumps(
            {"Data": {"PodDeviceEntries": [
                {"PodUID": "uid-1", "ResourceName": "r", "DeviceIDs": [1]}
            ]}}
        ),
    ],
)  # fmt: skip
def test_a_malformed_checkpoint_is_a_decode_failure(tmp_path: Path, body: str) -> None:
    path = tmp_path / "cp"
    path.write_text(body)
    with pytest.raises(CNIError) as e:
        read_checkpoint(str(path), "uid-1")
    assert e.value.code == DECODE_FAILURE
    assert str(path) in e.value.msg


def test_neither_socket_nor_checkpoint_is_try_again_later(tmp_path: Path, sock: str) -> None:
    with pytest.raises(CNIError) as e:
        KubeletDevices(sock, str(tmp_path / "none")).for_pod(POD)
    assert e.value.code == TRY_AGAIN_LATER


def test_an_unreadable_checkpoint_is_an_io_failure(tmp_path: Path) -> None:
    with pytest.raises(CNIError) as e:
        read_checkpoint(str(tmp_path), "uid-1")  # a directory
    assert e.value.code == IO_FAILURE
