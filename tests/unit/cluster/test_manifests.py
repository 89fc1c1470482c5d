"""The manifests cluster source (Pods and NADs from YAML/JSON files) and its local records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multinet.cluster.base import NAD, Pod
from multinet.cluster.manifests import ManifestCluster
from multinet.cluster.records import StatusRecords
from multinet.cni.errors import INVALID_CONFIG, InvalidConfig, IOFailure

PODS_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: team-a
  uid: 1234-abcd
  annotations:
    k8s.v1.cni.cncf.io/networks: blue,red@data0
spec:
  nodeName: node-1
  containers: [{name: c, image: busybox}]
---
# an empty document
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
data: {a: b}
---
apiVersion: v1
kind: Pod
metadata:
  name: bare
"""

NADS_YAML = """\
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: blue
  namespace: team-a
  annotations:
    k8s.v1.cni.cncf.io/resourceName: intel.com/sriov
spec:
  config: '{"cniVersion": "1.0.0", "name": "blue", "type": "bridge"}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: red
  namespace: team-a
spec:
  config:
    cniVersion: 0.3.1
    type: macvlan
    master: eth0
    ipam: {type: host-local, subnet: 10.1.0.0/24}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: from-conf-dir
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    d = tmp_path / "manifests"
    write(d / "pods.yaml", PODS_YAML)
    write(d / "nested" / "deeper" / "nads.yml", NADS_YAML)
    json_pod = {
        "kind": "Pod",
        "metadata": {"name": "from-json", "namespace": "team-b", "uid": "u-json"},
    }
    write(d / "nested" / "pod.json", json.dumps(json_pod, indent=2))
    write(d / "README.md", "kind: Pod\nmetadata: {name: not-read}\n")
    write(d / "notes.txt", "{{{ not yaml")
    return d


def test_reads_pods_from_multi_document_files(manifests: Path, tmp_path: Path) -> None:
    cluster = ManifestCluster(str(manifests), str(tmp_path / "state"))
    assert cluster.get_pod("team-a", "web") == Pod(
        "team-a",
        "web",
        "1234-abcd",
        {"k8s.v1.cni.cncf.io/networks": "blue,red@data0"},
        "node-1",
    )
    assert cluster.get_pod("default", "bare") == Pod("default", "bare", "")
    assert cluster.get_pod("team-b", "from-json") == Pod("team-b", "from-json", "u-json")
    assert cluster.get_pod("default", "not-read") is None
    assert cluster.get_pod("team-b", "web") is None
    assert sorted(p.key for p in cluster.pods()) == [
        "default/bare",
        "team-a/web",
        "team-b/from-json",
    ]


def test_reads_nads_with_string_and_inline_configs(manifests: Path, tmp_path: Path) -> None:
    cluster = ManifestCluster(str(manifests), str(tmp_path / "state"))
    assert cluster.get_nad("team-a", "blue") == NAD(
        "team-a",
        "blue",
        '{"cniVersion": "1.0.0", "name": "blue", "type": "bridge"}',
        {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"},
    )
    red = cluster.get_nad("team-a", "red")
    assert red is not None
    assert json.loads(red.config) == {
        "cniVersion": "0.3.1",
        "type": "macvlan",
        "master": "eth0",
        "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"},
    }
    assert red.annotations == {}
    assert cluster.get_nad("default", "from-conf-dir") == NAD("default", "from-conf-dir", "")
    assert cluster.get_nad("team-a", "ghost") is None
    assert cluster.get_pod("team-a", "blue") is None  # kinds do not mix


def test_a_later_manifest_replaces_an_earlier_object(tmp_path: Path) -> None:
    d = tmp_path / "m"
    write(d / "a.yaml", "kind: Pod\nmetadata: {name: p, uid: first}\n")
    write(d / "b.yaml", "kind: Pod\nmetadata: {name: p, uid: second}\n")
    assert ManifestCluster(str(d), str(tmp_path)).get_pod("default", "p") == Pod(
        "default", "p", "second"
    )


def test_empty_directory(tmp_path: Path) -> None:
    cluster = ManifestCluster(str(tmp_path), str(tmp_path / "state"))
    assert cluster.pods() == []
    assert cluster.get_nad("default", "x") is None


def test_missing_directory_fails_on_first_use_not_construction(tmp_path: Path) -> None:
    # Constructing must not fail: a DEL answered by the journal never reads manifests.
    cluster = ManifestCluster(str(tmp_path / "absent"), str(tmp_path))
    with pytest.raises(InvalidConfig) as e:
        cluster.get_pod("default", "x")
    assert e.value.msg == f"manifests directory {tmp_path / 'absent'} does not exist"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind: Pod\nmetadata: {name: [unclosed\n", "is not valid YAML"),
        # Scalars PyYAML's constructors refuse with a ValueError (Python's 4300-digit limit
        # on int(); no 13th month): not an internal error.
        pytest.param(
            "kind: Pod\nmetadata: {name: p, uid: " + "1" * 5000 + "}\n",
            "is not valid YAML",
            id="int-of-5000-digits",
        ),
        pytest.param(
            "kind: Pod\napiVersion: 2001-13-45\nmetadata: {name: p}\n",
            "is not valid YAML",
            id="no-13th-month",
        ),
        ("kind: Pod\nmetadata: {namespace: x}\n", "a Pod has no metadata.name"),
        (
            "kind: NetworkAttachmentDefinition\nmetadata: {}\n",
            "a NetworkAttachmentDefinition has no metadata.name",
        ),
        ("kind: Pod\nmetadata: {name: ''}\n", "a Pod has no metadata.name"),
        (
            "kind: Pod\nmetadata: {name: p, annotations: {count: 3}}\n",
            "Pod default/p metadata.annotations must be a map of strings to strings",
        ),
        (
            "kind: Pod\nmetadata: {name: p, annotations: [a]}\n",
            "Pod default/p metadata.annotations must be a map of strings to strings",
        ),
        (
            "kind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec: {config: 42}\n",
            "NetworkAttachmentDefinition default/n spec.config must be a string holding JSON",
        ),
        (
            "kind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec: {config: [1]}\n",
            "NetworkAttachmentDefinition default/n spec.config must be a string holding JSON",
        ),
    ],
)
def test_errors_name_the_file(tmp_path: Path, text: str, problem: str) -> None:
    d = tmp_path / "m"
    write(d / "good.yaml", "kind: Pod\nmetadata: {name: fine}\n")
    bad = write(d / "sub" / "bad.yaml", "---\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + text)
    cluster = ManifestCluster(str(d), str(tmp_path / "state"))
    with pytest.raises(InvalidConfig) as e:
        cluster.get_pod("default", "fine")
    assert e.value.code == INVALID_CONFIG
    assert e.value.msg.startswith(f"manifest {bad}")
    assert problem in e.value.msg


def test_non_mapping_documents_are_ignored(tmp_path: Path) -> None:
    write(tmp_path / "m" / "odd.yaml", "- a list\n---\njust a string\n---\n42\n")
    assert ManifestCluster(str(tmp_path / "m"), str(tmp_path)).pods() == []


def test_status_and_events_go_to_the_state_directory(manifests: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    cluster = ManifestCluster(str(manifests), str(state))
    pod = cluster.get_pod("team-a", "web")
    assert pod is not None
    status: list[dict[str, Any]] = [
        {
            "name": "k8s-pod-network",
            "interface": "eth0",
            "ips": ["10.0.0.5"],
            "default": True,
            "dns": {},
        },
    ]
    cluster.set_network_status(pod, status)
    cluster.emit_event(pod, "AddedInterface", "Add net1 [10.1.0.5] from team-a/blue")
    cluster.emit_event(pod, "FailedAttach", "ADD failed: boom", warning=True)

    assert json.loads((state / "status" / "team-a_web.json").read_text()) == status
    records = StatusRecords(str(state))
    assert records.read_status("team-a", "web") == status
    events = records.events()
    assert [{k: v for k, v in e.items() if k != "time"} for e in events] == [
        {
            "namespace": "team-a",
            "pod": "web",
            "type": "Normal",
            "reason": "AddedInterface",
            "message": "Add net1 [10.1.0.5] from team-a/blue",
        },
        {
            "namespace": "team-a",
            "pod": "web",
            "type": "Warning",
            "reason": "FailedAttach",
            "message": "ADD failed: boom",
        },
    ]
    assert all(isinstance(e["time"], float) for e in events)
    # The manifests themselves are never written.
    assert (manifests / "pods.yaml").read_text() == PODS_YAML


# -- StatusRecords ----------------------------------------------------------------------------


def test_records_round_trip_and_remove(tmp_path: Path) -> None:
    records = StatusRecords(str(tmp_path))
    assert records.read_status("ns", "p") is None
    assert records.events() == []
    records.write_status("ns", "p", [{"name": "a"}])
    records.write_status("ns", "p", [{"name": "b"}])  # replaced, not appended
    assert records.read_status("ns", "p") == [{"name": "b"}]
    assert records.path("ns", "p") == str(tmp_path / "status" / "ns_p.json")
    assert sorted(p.name for p in (tmp_path / "status").iterdir()) == ["ns_p.json"]
    records.remove_status("ns", "p")
    records.remove_status("ns", "p")  # already gone: fine
    assert records.read_status("ns", "p") is None


def test_records_unreadable_status_is_none(tmp_path: Path) -> None:
    records = StatusRecords(str(tmp_path))
    write(tmp_path / "status" / "ns_p.json", "{broken")
    assert records.read_status("ns", "p") is None


def test_records_write_failure_is_an_io_failure(tmp_path: Path) -> None:
    (tmp_path / "status").write_text("a file where the directory should be")
    records = StatusRecords(str(tmp_path))
    with pytest.raises(IOFailure) as e:
        records.write_status("ns", "p", [])
    assert e.value.msg == "cannot write network-status for ns/p"
    records.append_event({"reason": "x"})  # events are best effort: no exception
    assert records.events() == []


def test_events_file_is_trimmed_to_the_newer_half(tmp_path: Path, monkeypatch: Any) -> None:
    import multinet.cluster.records as records_module

    monkeypatch.setattr(records_module, "MAX_EVENTS_BYTES", 2000)
    records = StatusRecords(str(tmp_path))
    for i in range(100):
        records.append_event({"n": i, "message": "x" * 40})
    numbers = [e["n"] for e in records.events()]
    assert numbers[-1] == 99  # the newest is always kept
    assert numbers == list(range(numbers[0], 100))  # a contiguous tail, oldest dropped
    assert len(numbers) < 100
    assert (tmp_path / "status" / "events.jsonl").stat().st_size <= 2000 + 60


def test_records_remove_is_best_effort(tmp_path: Path) -> None:
    # DEL calls this: a state directory that cannot be used must not make it fail.
    (tmp_path / "status").write_text("not a directory")
    StatusRecords(str(tmp_path)).remove_status("ns", "p")
    assert (tmp_path / "status").read_text() == "not a directory"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind: Pod\nmetadata: [p]\n", "Pod metadata must be an object, got list"),
        ("kind: Pod\nmetadata: {name: [p]}\n", "Pod metadata.name must be a string"),
        ("kind: Pod\nmetadata: {name: p, namespace: 7}\n", "metadata.namespace must be a string"),
        ("kind: Pod\nmetadata: {name: p, uid: {a: 1}}\n", "metadata.uid must be a string"),
        ("kind: Pod\nmetadata: {name: p}\nspec: [x]\n", "Pod default/p spec must be an object"),
        (
            "kind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec: 3\n",
            "NetworkAttachmentDefinition default/n spec must be an object",
        ),
        (
            "kind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec: {config: {a: .nan}}\n",
            "spec.config is not JSON",
        ),
    ],
)
def test_malformed_manifest_object_is_an_invalid_config(
    tmp_path: Path, text: str, problem: str
) -> None:
    bad = write(tmp_path / "m" / "bad.yaml", text)
    with pytest.raises(InvalidConfig) as e:
        ManifestCluster(str(tmp_path / "m"), str(tmp_path / "state")).get_pod("default", "p")
    assert e.value.code == INVALID_CONFIG
    assert e.value.msg.startswith(f"manifest {bad}: ")
    assert problem in e.value.msg


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"kind": "Pod", "metadata": {"name": "p", "x": NaN}}', "NaN is not JSON"),
        (b'\xef\xbb\xbf{"kind": "Pod", "metadata": {"name": "p"}}', "byte order mark"),
        ('{"kind": "Pod", "metadata": {"name": "p"}}'.encode("utf-16"), "not UTF-8"),
        (b"[" * 100000, "nested deeper than 64 levels"),
    ],
)
def test_non_standard_manifest_json_is_an_invalid_config(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    bad = tmp_path / "m" / "pod.json"
    bad.parent.mkdir()
    bad.write_bytes(data)
    with pytest.raises(InvalidConfig) as e:
        ManifestCluster(str(tmp_path / "m"), str(tmp_path / "state")).get_pod("default", "p")
    assert e.value.msg.startswith(f"manifest {bad} is not valid JSON: ")
    assert problem in e.value.msg


def test_deeply_nested_manifest_yaml_is_an_invalid_config(tmp_path: Path) -> None:
    write(tmp_path / "m" / "deep.yaml", "[" * 100000)
    with pytest.raises(InvalidConfig) as e:
        ManifestCluster(str(tmp_path / "m"), str(tmp_path / "state")).get_pod("default", "p")
    assert e.value.code == INVALID_CONFIG
    assert "deep.yaml" in e.value.msg
