"""Surface 5 (unit level, no root): API objects as the API server or a watch delivers
them. `pod_from_json` / `nad_from_json` return a well-typed Pod / NAD or raise a CNIError
with a code of the CNI table; never another exception."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import strategies as st

from multinet.cluster.api import nad_from_json, pod_from_json
from multinet.cluster.base import NAD, Pod
from tests.integration.properties import strategies as s
from tests.integration.properties.harness import is_cni_error, prop

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "namespace": "default",
        "uid": "5d3f",
        "annotations": {"k8s.v1.cni.cncf.io/networks": "net-a", "other": "x"},
    },
    "spec": {"nodeName": "node-1", "containers": [{"name": "app"}]},
}
NADOBJ: dict[str, Any] = {
    "apiVersion": "k8s.cni.cncf.io/v1",
    "kind": "NetworkAttachmentDefinition",
    "metadata": {
        "name": "n",
        "namespace": "default",
        "annotations": {"k8s.v1.cni.cncf.io/resourceName": "r"},
    },
    "spec": {"config": '{"cniVersion": "1.0.0", "type": "bridge"}'},
}


def objects(template: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mutated objects as the JSON decoder hands them over (Raw and Big made real)."""
    mutated = s.mutations(template, file_names=frozenset()).map(lambda m: s.apply(template, m))
    return st.one_of(mutated, s.json_values(), mutated.map(realize))


def realize(value: Any) -> Any:
    if isinstance(value, s.Big):
        return value.value
    if isinstance(value, s.Raw):
        return float("nan") if "NaN" in value.text else value.text[:100]
    if isinstance(value, list):
        return [realize(v) for v in value]
    if isinstance(value, dict):
        return {k: realize(v) for k, v in value.items()}
    return value


def well_typed(obj: Pod | NAD) -> bool:
    fields = [obj.namespace, obj.name, *(obj.annotations.keys()), *(obj.annotations.values())]
    fields += [obj.uid, obj.node_name] if isinstance(obj, Pod) else [obj.config]
    return all(isinstance(f, str) for f in fields)


def check(parse: Callable[[Any], Pod | NAD], obj: Any) -> None:
    try:
        parsed = parse(obj)
    except Exception as e:
        assert is_cni_error(e), f"{type(e).__name__}: {e!s:.300}"
        return
    assert well_typed(parsed), f"not a well-typed object: {parsed!r:.500}"


ANNOTATION_NOT_A_STRING = {**POD, "metadata": {**POD["metadata"], "annotations": {"a": 1}}}
ANNOTATIONS_NOT_A_MAP = {**POD, "metadata": {**POD["metadata"], "annotations": ["a"]}}


@prop(
    ci=300,
    obj=(
        objects(POD),
        [
            ANNOTATION_NOT_A_STRING,
            ANNOTATIONS_NOT_A_MAP,
            {**POD, "metadata": "x"},
            {**POD, "spec": []},
            [],
            None,
        ],
    ),
)
def test_pod_from_json(obj: Any) -> None:
    check(pod_from_json, obj)


@prop(
    ci=300,
    obj=(
        objects(NADOBJ),
        [{**NADOBJ, "spec": "x"}, {**NADOBJ, "spec": []}, {**NADOBJ, "metadata": {"name": 1}}, []],
    ),
)
def test_nad_from_json(obj: Any) -> None:
    check(nad_from_json, obj)


@pytest.mark.parametrize("parse", [pod_from_json, nad_from_json])
def test_parsers_accept_the_templates(parse: Callable[[Any], Pod | NAD]) -> None:
    check(parse, POD if parse is pod_from_json else NADOBJ)
