"""What the API server sends is checked like user input: a malformed Pod or NAD, or a
body that is not a JSON object, is a ClusterError (code 101) naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from multinet.cluster.api import nad_from_json, pod_from_json, response_json
from multinet.cluster.base import STATUS_ANNOTATION, Pod
from multinet.cluster.kube import KubeCluster
from multinet.cni.errors import CLUSTER_ERROR, ClusterError

META = {"name": "p", "namespace": "ns", "uid": "u1"}


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ([], "Pod must be an object, got list"),
        ({"metadata": "p"}, "Pod metadata must be an object, got string"),
        ({"metadata": {"namespace": "ns"}}, "a Pod has no metadata.name"),
        ({"metadata": {"name": 5}}, "Pod metadata.name must be a string, got number"),
        ({"metadata": {"name": "p", "namespace": ["ns"]}}, "metadata.namespace must be a string"),
        ({"metadata": {**META, "uid": 12}}, "Pod ns/p metadata.uid must be a string"),
        ({"metadata": {**META, "annotations": ["a"]}}, "metadata.annotations must be a map"),
        ({"metadata": {**META, "annotations": {"a": 1}}}, "metadata.annotations must be a map"),
        ({"metadata": {**META, "annotations": {"a": None}}}, "metadata.annotations must be a map"),
        ({"metadata": META, "spec": []}, "Pod ns/p spec must be an object"),
        ({"metadata": META, "spec": {"nodeName": 1}}, "Pod ns/p spec.nodeName must be a string"),
        ({"metadata": {**META, "name": "p\ud800"}}, "holds a NUL or a lone surrogate"),
    ],
)
def test_malformed_pod_from_the_api_is_a_cluster_error(obj: Any, problem: str) -> None:
    with pytest.raises(ClusterError) as e:
        pod_from_json(obj)
    assert e.value.code == CLUSTER_ERROR
    assert e.value.msg.startswith("the API server sent a malformed object: ")
    assert problem in e.value.msg


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (
            {"metadata": META, "spec": "x"},
            "NetworkAttachmentDefinition ns/p spec must be an object",
        ),
        ({"metadata": META, "spec": {"config": 42}}, "spec.config must be a string holding JSON"),
        ({"metadata": META, "spec": {"config": [1]}}, "spec.config must be a string holding JSON"),
        ({"metadata": {**META, "annotations": 3}}, "metadata.annotations must be a map"),
    ],
)
def test_malformed_nad_from_the_api_is_a_cluster_error(obj: Any, problem: str) -> None:
    with pytest.raises(ClusterError) as e:
        nad_from_json(obj)
    assert e.value.code == CLUSTER_ERROR
    assert problem in e.value.msg


def test_well_formed_objects_convert() -> None:
    pod = pod_from_json({"metadata": {**META, "annotations": {"a": "b"}}, "spec": {}})
    assert pod == Pod("ns", "p", "u1", {"a": "b"}, "")
    nad = nad_from_json({"metadata": META, "spec": {"config": {"type": "bridge"}}})
    assert nad.config == '{"type": "bridge"}'
    assert nad_from_json({"metadata": META}).config == ""


@pytest.mark.parametrize("body", [b"[1]", b'"x"', b"{", b'{"a": NaN}', b"[" * 100000, None, 3])
def test_api_response_that_is_not_a_json_object_is_a_cluster_error(body: Any) -> None:
    with pytest.raises(ClusterError) as e:
        response_json("get pod ns/p", body)
    assert e.value.msg.startswith("get pod ns/p: the API server sent")


class _Fixed(KubeCluster):
    def __init__(self, annotations: dict[str, str]) -> None:
        super().__init__("", state_dir="/nonexistent")
        self.pod = Pod("ns", "p", "u1", annotations)

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        return self.pod


@pytest.mark.parametrize("value", ["{", '{"a": 1}', "[1]", "[NaN]", "[" * 100000])
def test_malformed_network_status_is_a_cluster_error(value: str) -> None:
    with pytest.raises(ClusterError) as e:
        _Fixed({STATUS_ANNOTATION: value}).network_status("ns", "p")
    assert e.value.msg == "pod ns/p has a malformed network-status"


def test_network_status_is_read() -> None:
    status = _Fixed({STATUS_ANNOTATION: '[{"name": "n"}]'}).network_status("ns", "p")
    assert status == [{"name": "n"}]
