"""The fake kube-apiserver, driven by the real ``kubernetes`` client."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, dynamic, watch
from kubernetes.client.exceptions import ApiException

from .kubeapi import KubeAPIServer
from .kubeapi_faults import Body, CutShort, Hang, Status, Truncated

NAD_GROUP, NAD_VERSION, NAD_PLURAL = "k8s.cni.cncf.io", "v1", "network-attachment-definitions"
MERGE = "application/merge-patch+json"
UID = "11111111-2222-3333-4444-555555555555"


def pod(name: str, ns: str = "ns1", node: str = "node1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox:1.36"}]},
    }


def nad(name: str, ns: str = "ns1", config_: str = '{"type": "bridge"}') -> dict[str, Any]:
    return {
        "apiVersion": f"{NAD_GROUP}/{NAD_VERSION}",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"config": config_},
    }


@pytest.fixture
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as srv:
        yield srv


# The client's models make every field Optional; tests hold client objects as Any.


def new_client(kubeconfig: str) -> Any:
    return config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]


def new_watch() -> Any:
    return watch.Watch()  # type: ignore[no-untyped-call]


@pytest.fixture
def api(server: KubeAPIServer, tmp_path: Path) -> Iterator[Any]:
    api_client = new_client(server.write_kubeconfig(str(tmp_path / "kubeconfig")))
    yield api_client
    api_client.close()


@pytest.fixture
def v1(api: Any) -> Any:
    return client.CoreV1Api(api)


def connect(server: KubeAPIServer) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=server.ca_file)
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx)


def raw(
    server: KubeAPIServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    token: str | None = "test-token",
) -> tuple[int, dict[str, str], Any]:
    """One request without the client library: status, headers, decoded body."""
    conn = connect(server)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    conn.request(method, path, None if body is None else json.dumps(body), hdrs)
    resp = conn.getresponse()
    data = resp.read().decode()
    conn.close()
    ctype = resp.getheader("Content-Type") or ""
    return resp.status, dict(resp.getheaders()), json.loads(data) if "json" in ctype else data


def raw_bytes(
    server: KubeAPIServer, method: str, path: str, timeout: float = 10.0
) -> tuple[int, bytes]:
    """One authenticated request: its status and its body's bytes, undecoded."""
    ctx = ssl.create_default_context(cafile=server.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=timeout)
    try:
        conn.request(method, path, headers={"Authorization": "Bearer test-token"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def watch_events(
    server: KubeAPIServer, path: str, count: int, token: str = "test-token"
) -> list[dict[str, Any]]:
    """The first ``count`` events of a raw watch request, without waiting for its end."""
    conn = connect(server)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    events = [json.loads(resp.readline()) for _ in range(count)]
    conn.close()
    return events


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body or "null")
    return body


# --- connection, TLS, kubeconfig, discovery ---------------------------------------


def test_kubeconfig_points_at_tls_server_with_ip_and_dns_sans(
    server: KubeAPIServer, api: Any, tmp_path: Path
) -> None:
    kubeconfig = json.loads((tmp_path / "kubeconfig").read_text())
    assert kubeconfig["clusters"][0]["cluster"] == {
        "server": server.url,
        "certificate-authority": server.ca_file,
    }
    assert kubeconfig["users"][0]["user"] == {"token": "test-token"}
    assert server.url == f"https://127.0.0.1:{server.port}"
    assert client.VersionApi(api).get_code().git_version == "v1.31.0+multinet-fake"

    ctx = ssl.create_default_context(cafile=server.ca_file)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            cert = tls.getpeercert()
    assert cert is not None
    sans = cert["subjectAltName"]
    assert ("DNS", "localhost") in sans
    assert ("IP Address", "127.0.0.1") in sans


def test_discovery_serves_the_dynamic_client(server: KubeAPIServer, api: Any) -> None:
    code, _, core = raw(server, "GET", "/api/v1")
    assert code == 200
    names = {r["name"]: r for r in core["resources"]}
    assert names["pods"]["kind"] == "Pod"
    assert names["pods/status"]["verbs"] == ["get", "patch", "update"]
    _, _, groups = raw(server, "GET", "/apis")
    assert [g["name"] for g in groups["groups"]] == [
        "events.k8s.io",
        "ipam.multinet.dev",
        "k8s.cni.cncf.io",
    ]

    server.add_nad(nad("net-a"))
    dyn: Any = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
    nads = dyn.resources.get(
        api_version=f"{NAD_GROUP}/{NAD_VERSION}", kind="NetworkAttachmentDefinition"
    )
    assert [i.metadata.name for i in nads.get(namespace="ns1").items] == ["net-a"]


def test_unknown_path_and_method_answer_with_status(server: KubeAPIServer) -> None:
    code, headers, body = raw(server, "GET", "/api/v1/namespaces/ns1/widgets")
    assert code == 404
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }
    code, _, body = raw(server, "PUT", "/api/v1/namespaces/ns1/pods", {})
    assert (code, body["reason"]) == (405, "MethodNotAllowed")


# --- auth -------------------------------------------------------------------------


def test_bad_or_missing_token_is_401(server: KubeAPIServer, tmp_path: Path) -> None:
    server.add_pod(pod("p1"))
    kubeconfig = Path(server.write_kubeconfig(str(tmp_path / "bad")))
    kubeconfig.write_text(kubeconfig.read_text().replace('"test-token"', '"wrong-token"'))
    api = new_client(str(kubeconfig))
    v1_bad: Any = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        v1_bad.read_namespaced_pod("p1", "ns1")
    api.close()
    assert err.value.status == 401
    assert status_of(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert raw(server, "GET", "/api/v1/namespaces/ns1/pods/p1", token=None)[0] == 401
    assert raw(server, "GET", "/healthz", token=None)[::2] == (200, "ok")


def test_a_minted_token_works_until_it_expires_then_is_401(server: KubeAPIServer) -> None:
    server.add_pod(pod("p1"))
    short, long = server.mint_token(0.5), server.mint_token(60)
    assert short.count(".") == 2  # JWT-shaped
    claims = json.loads(base64.urlsafe_b64decode(short.split(".")[1] + "=="))
    assert claims["sub"] == "system:serviceaccount:kube-system:multinet"
    path = "/api/v1/namespaces/ns1/pods/p1"
    assert raw(server, "GET", path, token=short)[0] == 200
    time.sleep(0.6)
    code, _, body = raw(server, "GET", path, token=short)
    assert (code, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
    assert raw(server, "GET", path, token=long)[0] == 200  # the newer one still works
    assert raw(server, "GET", path)[0] == 200  # and the static one
    server.revoke_token(long)
    assert raw(server, "GET", path, token=long)[0] == 401


def test_an_open_watch_outlives_its_token(server: KubeAPIServer) -> None:
    """Authenticated once, when it arrives (as kube-apiserver): expiry does not cut it."""
    token = server.mint_token(0.5)
    conn = connect(server)
    conn.request(
        "GET",
        "/api/v1/pods?watch=true&resourceVersion=0",
        headers={"Authorization": f"Bearer {token}"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    time.sleep(0.6)
    server.add_pod(pod("late"))
    assert json.loads(resp.readline())["object"]["metadata"]["name"] == "late"
    conn.close()
    assert raw(server, "GET", "/api/v1/pods?watch=true", token=token)[0] == 401


# --- pods: read, list, selectors --------------------------------------------------


def test_read_pod_keeps_seeded_identity(server: KubeAPIServer, v1: Any) -> None:
    seeded = pod("p1")
    seeded["metadata"]["uid"] = UID
    seeded["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    stored = server.add_pod(seeded)
    got = v1.read_namespaced_pod("p1", "ns1")
    assert got.metadata.uid == UID
    assert got.metadata.resource_version == stored["metadata"]["resourceVersion"] == "1"
    assert got.status.phase == "Running"
    assert got.status.pod_ip == "10.0.0.5"
    assert got.spec.restart_policy == "Always"  # defaulted like the real server
    assert server.get_pod("ns1", "p1") == stored
    assert server.get_pod("ns1", "nope") is None


def test_list_pods_with_field_and_label_selectors(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("a", node="node1", app="web"))
    server.add_pod(pod("b", node="node2", app="web"))
    server.add_pod(pod("c", ns="ns2", node="node1", app="db"))

    names = [p.metadata.name for p in v1.list_namespaced_pod("ns1").items]
    assert names == ["a", "b"]
    on_node1 = v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=node1")
    assert [(p.metadata.namespace, p.metadata.name) for p in on_node1.items] == [
        ("ns1", "a"),
        ("ns2", "c"),
    ]
    assert on_node1.metadata.resource_version == "3"
    web = v1.list_pod_for_all_namespaces(label_selector="app=web,app!=db")
    assert [p.metadata.name for p in web.items] == ["a", "b"]
    by_name = v1.list_namespaced_pod("ns1", field_selector="metadata.name=b")
    assert [p.metadata.name for p in by_name.items] == ["b"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["a"]),
        ("!tier", ["b", "c", "d"]),
        ("app==web,tier=front", ["a"]),
    ],
)
def test_label_selector_grammar(server: KubeAPIServer, selector: str, expected: list[str]) -> None:
    server.add_pod(pod("a", app="web", tier="front"))
    server.add_pod(pod("b", app="web"))
    server.add_pod(pod("c", app="db"))
    server.add_pod(pod("d"))
    code, _, body = raw(server, "GET", "/api/v1/pods?labelSelector=" + selector.replace(" ", "+"))
    assert code == 200
    assert [i["metadata"]["name"] for i in body["items"]] == expected


def test_list_wire_format_and_pagination(server: KubeAPIServer) -> None:
    for name in ("a", "b", "c"):
        server.add_pod(pod(name))
    _, _, page1 = raw(server, "GET", "/api/v1/namespaces/ns1/pods?limit=2")
    assert page1["kind"] == "PodList"
    assert page1["apiVersion"] == "v1"
    assert page1["metadata"]["resourceVersion"] == "3"
    assert page1["metadata"]["remainingItemCount"] == 1
    assert [i["metadata"]["name"] for i in page1["items"]] == ["a", "b"]
    assert "kind" not in page1["items"][0]  # built-in list items carry no TypeMeta
    token = page1["metadata"]["continue"]
    _, _, page2 = raw(server, "GET", f"/api/v1/namespaces/ns1/pods?limit=2&continue={token}")
    assert [i["metadata"]["name"] for i in page2["items"]] == ["c"]
    assert "continue" not in page2["metadata"]


def test_unsupported_field_selector_is_400(v1: Any) -> None:
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_pod("ns1", field_selector="spec.color=blue")
    assert err.value.status == 400
    assert status_of(err.value)["message"] == "field label not supported: spec.color"


# --- pods: create, patch, replace, delete -----------------------------------------


def test_create_pod_assigns_identity_and_resets_status(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("existing"))
    body = pod("p1")
    body["status"] = {"phase": "Running"}
    created = v1.create_namespaced_pod("ns1", body)
    assert re.fullmatch(r"[0-9a-f-]{36}", created.metadata.uid)
    assert created.metadata.resource_version == "2"
    assert created.metadata.creation_timestamp is not None
    assert created.status.phase == "Pending"
    assert created.status.qos_class == "BestEffort"

    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod("ns1", pod("p1"))
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"
    assert status_of(err.value)["message"] == 'pods "p1" already exists'

    # (raw: the client validates this one itself)
    code, _, body = raw(server, "POST", "/api/v1/namespaces/ns1/pods", {"metadata": {"name": "e"}})
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"] == 'Pod "e" is invalid: spec.containers: Required value'
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}
    ]


def test_dry_run_and_malformed_writes(server: KubeAPIServer) -> None:
    code, _, body = raw(server, "POST", "/api/v1/namespaces/ns1/pods?dryRun=All", pod("p1"))
    assert (code, body["metadata"]["name"]) == (201, "p1")
    assert server.get_pod("ns1", "p1") is None
    assert server.resource_version == "0"

    stale = pod("p1")
    stale["metadata"]["resourceVersion"] = "7"
    code, _, body = raw(server, "POST", "/api/v1/namespaces/ns1/pods", stale)
    assert (code, body["message"]) == (
        500,
        "resourceVersion should not be set on objects to be created",
    )
    code, _, body = raw(server, "POST", "/api/v1/namespaces/ns2/pods", pod("p1", ns="ns1"))
    assert (code, body["reason"]) == (400, "BadRequest")

    server.add_pod(pod("p1"))
    renamed = pod("other")
    code, _, body = raw(server, "PUT", "/api/v1/namespaces/ns1/pods/p1", renamed)
    assert (code, body["message"]) == (
        400,
        "the name of the object (other) does not match the name on the URL (p1)",
    )
    code, _, body = raw(
        server,
        "PATCH",
        "/api/v1/namespaces/ns1/pods/p1",
        {},
        {"Content-Type": "application/apply-patch+yaml"},
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")


def test_merge_patch_sets_and_deletes_annotations(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("p1"))
    patched = v1.patch_namespaced_pod(
        "p1", "ns1", {"metadata": {"annotations": {"a": "1", "b": "2"}}}, _content_type=MERGE
    )
    assert patched.metadata.annotations == {"a": "1", "b": "2"}
    assert patched.metadata.resource_version == "2"
    patched = v1.patch_namespaced_pod(
        "p1", "ns1", {"metadata": {"annotations": {"a": None}}}, _content_type=MERGE
    )
    assert patched.metadata.annotations == {"b": "2"}
    assert patched.metadata.resource_version == "3"
    # A patch that changes nothing keeps the resourceVersion, as etcd does.
    same = v1.patch_namespaced_pod(
        "p1", "ns1", {"metadata": {"annotations": {"b": "2"}}}, _content_type=MERGE
    )
    assert same.metadata.resource_version == "3"
    assert server.request_count("PATCH") == 3


def test_strategic_merge_patch_merges_lists_by_key(server: KubeAPIServer, v1: Any) -> None:
    p = pod("p1", app="web", tier="front")
    p["spec"]["containers"].append({"name": "side", "image": "envoy:1"})
    server.add_pod(p)
    patch = {
        "metadata": {"labels": {"tier": None, "new": "x"}},
        "spec": {"containers": [{"name": "side", "image": "envoy:2"}]},
    }
    patched = v1.patch_namespaced_pod("p1", "ns1", patch)  # dict body -> strategic merge
    assert patched.metadata.labels == {"app": "web", "new": "x"}
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("main", "busybox:1.36"),
        ("side", "envoy:2"),
    ]
    with pytest.raises(ApiException) as err:  # pods may not change most of their spec
        v1.patch_namespaced_pod("p1", "ns1", {"spec": {"nodeName": "node9"}})
    assert err.value.status == 422
    assert status_of(err.value)["details"]["causes"][0]["field"] == "spec"


def test_json_patch_applies_and_fails_its_test_with_422(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("p1"))
    ops = [
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": "/metadata/annotations/k8s.v1.cni.cncf.io~1networks", "value": "n"},
    ]
    patched = v1.patch_namespaced_pod("p1", "ns1", ops)  # list body -> JSON patch
    assert patched.metadata.annotations == {"k8s.v1.cni.cncf.io/networks": "n"}
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod(
            "p1", "ns1", [{"op": "test", "path": "/spec/nodeName", "value": "x"}]
        )
    assert err.value.status == 422
    assert status_of(err.value)["reason"] == "Invalid"


def test_patch_status_subresource(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("p1"))
    patch = {
        "metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": "[]"}},
        "spec": {"nodeName": "ignored"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.1.1.1"},
    }
    patched = v1.patch_namespaced_pod_status("p1", "ns1", patch, _content_type=MERGE)
    assert patched.metadata.annotations == {"k8s.v1.cni.cncf.io/network-status": "[]"}
    assert patched.spec.node_name == "node1"  # /status ignores spec
    assert patched.status.pod_ip == "10.1.1.1"
    # Strategic merge on /status merges conditions by type.
    more = {"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}
    patched = v1.patch_namespaced_pod_status("p1", "ns1", more)
    assert [c.type for c in patched.status.conditions] == ["Ready", "PodScheduled"]
    # ...and the main resource ignores status.
    ignored = v1.patch_namespaced_pod(
        "p1", "ns1", {"status": {"podIP": "9.9.9.9"}}, _content_type=MERGE
    )
    assert ignored.status.pod_ip == "10.1.1.1"


def test_patch_preconditions_uid_and_resource_version(server: KubeAPIServer, v1: Any) -> None:
    seeded = pod("p1")
    seeded["metadata"]["uid"] = UID
    server.add_pod(seeded)
    ok = v1.patch_namespaced_pod(
        "p1", "ns1", {"metadata": {"uid": UID, "annotations": {"a": "1"}}}, _content_type=MERGE
    )
    assert ok.metadata.annotations == {"a": "1"}

    # A different uid in a patch fails validation (metadata.uid is immutable): the
    # real server answers 422 Invalid, not 409, because PATCH has no UID precondition.
    other = "99999999-2222-3333-4444-555555555555"
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod(
            "p1",
            "ns1",
            {"metadata": {"uid": other, "annotations": {"a": "2"}}},
            _content_type=MERGE,
        )
    assert err.value.status == 422
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        f'Pod "p1" is invalid: metadata.uid: Invalid value: "{other}": field is immutable'
    )

    # A stale resourceVersion in a patch is optimistic concurrency: 409 Conflict.
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod(
            "p1",
            "ns1",
            {"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}},
            _content_type=MERGE,
        )
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "Conflict"
    assert status_of(err.value)["message"] == (
        'Operation cannot be fulfilled on pods "p1": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert server.get_pod("ns1", "p1")["metadata"]["annotations"] == {"a": "1"}  # type: ignore[index]


def test_replace_checks_uid_and_resource_version(server: KubeAPIServer, v1: Any) -> None:
    seeded = pod("p1")
    seeded["metadata"]["uid"] = UID
    server.add_pod(seeded)
    current = v1.read_namespaced_pod("p1", "ns1")
    current.metadata.labels = {"v": "2"}
    replaced = v1.replace_namespaced_pod("p1", "ns1", current)
    assert replaced.metadata.labels == {"v": "2"}
    assert replaced.metadata.resource_version == "2"

    current.metadata.labels = {"v": "3"}  # still carries resourceVersion 1
    with pytest.raises(ApiException) as err:
        v1.replace_namespaced_pod("p1", "ns1", current)
    assert (err.value.status, status_of(err.value)["reason"]) == (409, "Conflict")

    # The UID of a PUT body is a storage precondition: a different pod -> 409.
    fresh = v1.read_namespaced_pod("p1", "ns1")
    fresh.metadata.uid = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ApiException) as err:
        v1.replace_namespaced_pod_status("p1", "ns1", fresh)
    assert err.value.status == 409
    assert "Precondition failed: UID in precondition: 00000000-" in status_of(err.value)["message"]


def test_delete_pod_with_preconditions(server: KubeAPIServer, v1: Any) -> None:
    seeded = pod("p1")
    seeded["metadata"]["uid"] = UID
    server.add_pod(seeded)
    wrong = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="other"))
    with pytest.raises(ApiException) as err:
        v1.delete_namespaced_pod("p1", "ns1", body=wrong)
    assert err.value.status == 409
    deleted = v1.delete_namespaced_pod("p1", "ns1")
    assert deleted.metadata.uid == UID  # pods answer a DELETE with the object
    assert server.get_pod("ns1", "p1") is None
    with pytest.raises(ApiException) as err:
        v1.delete_namespaced_pod("p1", "ns1")
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'pods "p1" not found'
    assert status_of(err.value)["details"] == {"name": "p1", "kind": "pods"}


# --- NetworkAttachmentDefinitions -------------------------------------------------


def test_nads_through_custom_objects_api(server: KubeAPIServer, api: Any) -> None:
    co: Any = client.CustomObjectsApi(api)
    created = co.create_namespaced_custom_object(
        NAD_GROUP, NAD_VERSION, "ns1", NAD_PLURAL, nad("a")
    )
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["resourceVersion"] == "1"
    assert re.fullmatch(r"[0-9a-f-]{36}", created["metadata"]["uid"])
    server.add_nad(nad("b", ns="ns2"))

    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(NAD_GROUP, NAD_VERSION, "ns1", NAD_PLURAL, nad("a"))
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"
    assert status_of(err.value)["message"] == (
        'network-attachment-definitions.k8s.cni.cncf.io "a" already exists'
    )

    got = co.get_namespaced_custom_object(NAD_GROUP, NAD_VERSION, "ns1", NAD_PLURAL, "a")
    assert got["spec"] == {"config": '{"type": "bridge"}'}
    listed = co.list_namespaced_custom_object(NAD_GROUP, NAD_VERSION, "ns1", NAD_PLURAL)
    assert listed["kind"] == "NetworkAttachmentDefinitionList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["items"][0]["kind"] == "NetworkAttachmentDefinition"
    everywhere = co.list_cluster_custom_object(NAD_GROUP, NAD_VERSION, NAD_PLURAL)
    assert [i["metadata"]["namespace"] for i in everywhere["items"]] == ["ns1", "ns2"]
    assert everywhere["metadata"]["resourceVersion"] == "2"

    gone = co.delete_namespaced_custom_object(NAD_GROUP, NAD_VERSION, "ns1", NAD_PLURAL, "a")
    assert gone["status"] == "Success"
    assert gone["details"]["name"] == "a"
    assert server.get_nad("ns1", "a") is None
    server.delete_nad("ns2", "b")
    assert co.list_cluster_custom_object(NAD_GROUP, NAD_VERSION, NAD_PLURAL)["items"] == []


def test_nad_patch_rejects_strategic_merge(server: KubeAPIServer) -> None:
    server.add_nad(nad("a"))
    path = f"/apis/{NAD_GROUP}/{NAD_VERSION}/namespaces/ns1/{NAD_PLURAL}/a"
    smp = {"Content-Type": "application/strategic-merge-patch+json"}
    code, _, body = raw(server, "PATCH", path, {"spec": {"config": "{}"}}, smp)
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    code, _, body = raw(server, "PATCH", path, {"spec": {"config": "{}"}}, {"Content-Type": MERGE})
    assert code == 200
    assert body["metadata"]["generation"] == 2


# --- watch ------------------------------------------------------------------------


def test_watch_replays_from_resource_version(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("old"))
    start = server.resource_version
    server.add_pod(pod("p1"))
    server.patch_pod("ns1", "p1", {"metadata": {"labels": {"x": "1"}}})
    server.delete_pod("ns1", "p1")

    w = new_watch()
    seen = []
    for event in w.stream(v1.list_namespaced_pod, "ns1", resource_version=start, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name, event["raw_object"]))
        if len(seen) == 3:
            w.stop()
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "p1"), ("MODIFIED", "p1"), ("DELETED", "p1")]
    assert [o["metadata"]["resourceVersion"] for _, _, o in seen] == ["2", "3", "4"]
    assert seen[1][2]["metadata"]["labels"] == {"x": "1"}


def test_watch_streams_live_changes(server: KubeAPIServer, v1: Any) -> None:
    seen: list[tuple[str, str]] = []
    w = new_watch()

    def consume() -> None:
        for event in w.stream(v1.list_pod_for_all_namespaces, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 4:
                w.stop()

    server.add_pod(pod("before"))
    thread = threading.Thread(target=consume)
    thread.start()
    assert server.wait_for_watchers(1)
    server.add_pod(pod("p1", ns="ns2"))
    server.patch_pod("ns2", "p1", {"status": {"phase": "Running"}})
    server.delete_pod("ns2", "p1")
    thread.join(5)
    assert not thread.is_alive()
    # No resourceVersion: the current state first, as synthetic ADDED events.
    assert seen == [("ADDED", "before"), ("ADDED", "p1"), ("MODIFIED", "p1"), ("DELETED", "p1")]


def test_watch_selector_turns_updates_into_added_and_deleted(server: KubeAPIServer) -> None:
    server.add_pod(pod("p1", app="web"))
    start = server.resource_version
    server.patch_pod("ns1", "p1", {"metadata": {"labels": {"app": "db"}}})
    server.add_pod(pod("p2", app="db"))
    server.patch_pod("ns1", "p1", {"metadata": {"labels": {"app": "web"}}})
    path = f"/api/v1/namespaces/ns1/pods?watch=true&labelSelector=app%3Dweb&resourceVersion={start}"
    events = watch_events(server, path, 2)
    assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events] == [
        ("DELETED", "2"),  # p1 left the selection
        ("ADDED", "4"),  # and came back; p2 never matched
    ]
    assert events[0]["object"]["metadata"]["labels"] == {"app": "web"}  # its last matching state


def test_watch_from_compacted_version_is_410(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("p1"))
    server.add_pod(pod("p2"))
    server.compact()
    # The error is an event in a 200 stream, as on a real server.
    assert watch_events(server, "/api/v1/pods?watch=1&resourceVersion=1", 1) == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "too old resource version: 1 (2)",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    with pytest.raises(ApiException) as err:
        for _ in new_watch().stream(
            v1.list_namespaced_pod, "ns1", resource_version="1", timeout_seconds=1
        ):
            pass
    assert err.value.status == 410
    assert err.value.reason == "Expired: too old resource version: 1 (2)"
    # From the current resourceVersion the watch works again.
    server.add_pod(pod("p3"))
    after = watch_events(server, "/api/v1/pods?watch=1&resourceVersion=2", 1)
    assert after[0]["object"]["metadata"]["name"] == "p3"


def test_watch_history_window_is_bounded() -> None:
    with KubeAPIServer(history=2) as srv:
        for name in ("a", "b", "c"):
            srv.add_pod(pod(name))
        url = "/api/v1/pods?watch=1&resourceVersion="
        names = [e["object"]["metadata"]["name"] for e in watch_events(srv, url + "1", 2)]
        assert names == ["b", "c"]
        srv.add_pod(pod("d"))  # the window is now resourceVersions 3..4
        too_old = watch_events(srv, url + "1", 1)[0]
        assert too_old["object"]["message"] == "too old resource version: 1 (2)"
        # "0" means any state: the current objects, whatever the window.
        names = [e["object"]["metadata"]["name"] for e in watch_events(srv, url + "0", 4)]
        assert names == ["a", "b", "c", "d"]


def test_watch_bookmarks_and_initial_events() -> None:
    with KubeAPIServer(bookmark_interval=0.05) as srv:
        srv.add_pod(pod("p1"))
        events = watch_events(
            srv,
            "/api/v1/namespaces/ns1/pods?watch=1&allowWatchBookmarks=true&sendInitialEvents=true"
            "&resourceVersionMatch=NotOlderThan",
            4,
        )
    assert events[0]["type"] == "ADDED"
    assert events[1] == {
        "type": "BOOKMARK",
        "object": {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "resourceVersion": "1",
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        },
    }
    assert [e["type"] for e in events[2:]] == ["BOOKMARK", "BOOKMARK"]
    assert [e["object"]["metadata"] for e in events[2:]] == [{"resourceVersion": "1"}] * 2


# --- events -----------------------------------------------------------------------


def test_events_through_both_apis(server: KubeAPIServer, api: Any) -> None:
    core: Any = client.CoreV1Api(api)
    events_v1: Any = client.EventsV1Api(api)
    core.create_namespaced_event(
        "ns1",
        {
            "metadata": {"name": "p1.1", "namespace": "ns1"},
            "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "ns1"},
            "reason": "AddedInterface",
            "message": "Add net1 [10.1.1.2/24] from ns1/net-a",
            "type": "Normal",
        },
    )
    events_v1.create_namespaced_event(
        "ns1",
        {
            "metadata": {"generateName": "p1."},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "reportingController": "multinet",
            "reportingInstance": "node1",
            "action": "Attach",
            "reason": "AddedInterface",
            "regarding": {"kind": "Pod", "name": "p1", "namespace": "ns1"},
            "note": "Add net2",
            "type": "Normal",
        },
    )
    events = server.events()
    assert [(e["apiVersion"], e["reason"]) for e in events] == [
        ("v1", "AddedInterface"),
        ("events.k8s.io/v1", "AddedInterface"),
    ]
    assert events[0]["message"] == "Add net1 [10.1.1.2/24] from ns1/net-a"
    assert re.fullmatch(r"p1\.[a-z0-9]{5}", events[1]["metadata"]["name"])
    assert [e.reason for e in core.list_namespaced_event("ns1").items] == ["AddedInterface"]

    # events.k8s.io/v1 validates its required fields (raw: the client checks eventTime itself).
    bad = {"metadata": {"name": "bad"}, "reason": "X", "type": "Normal"}
    code, _, body = raw(server, "POST", "/apis/events.k8s.io/v1/namespaces/ns1/events", bad)
    assert code == 422
    fields = [c["field"] for c in body["details"]["causes"]]
    assert fields == ["eventTime", "reportingController", "reportingInstance", "action"]


# --- faults, outages, accounting --------------------------------------------------


def test_fail_next_injects_statuses(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("p1"))
    server.fail_next(1, 500, path_contains="/pods/p1", method="GET")
    server.fail_next(1, 503, path_contains="/pods/p1", method="GET")
    codes = []
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            v1.read_namespaced_pod("p1", "ns1")
        codes.append((err.value.status, status_of(err.value)["reason"]))
    assert codes == [(500, "InternalError"), (503, "ServiceUnavailable")]
    assert v1.read_namespaced_pod("p1", "ns1").metadata.name == "p1"

    server.fail_next(1, 409, method="PATCH")
    assert v1.read_namespaced_pod("p1", "ns1").metadata.name == "p1"  # GET does not match
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod("p1", "ns1", {"metadata": {"labels": {"a": "b"}}})
    assert status_of(err.value)["message"].startswith('Operation cannot be fulfilled on pods "p1"')
    assert server.get_pod("ns1", "p1")["metadata"]["labels"] == {}  # type: ignore[index]

    server.fail_next(1, 429)
    code, headers, body = raw(server, "GET", "/api/v1/namespaces/ns1/pods")
    assert (code, headers["Retry-After"], body["reason"]) == (429, "1", "TooManyRequests")


def test_inject_faults_times_or_always(server: KubeAPIServer) -> None:
    server.add_pod(pod("p1"))
    path = "/api/v1/namespaces/ns1/pods/p1"
    server.inject(Status(403), path_contains="/pods/p1", method="GET")  # always
    for _ in range(3):
        code, _, body = raw(server, "GET", path)
        assert (code, body["reason"], body["details"]) == (
            403,
            "Forbidden",
            {"name": "p1", "kind": "pods"},
        )
    assert body["message"] == (
        'pods "p1" is forbidden: User "system:serviceaccount:kube-system:multinet" cannot '
        'get resource "pods" in API group "" in the namespace "ns1"'
    )
    server.clear_faults()
    server.inject(Body(502, b"<html>bad gateway</html>", "text/html"), times=1)
    assert raw_bytes(server, "GET", path)[:2] == (502, b"<html>bad gateway</html>")
    assert raw(server, "GET", path)[0] == 200


def test_inject_broken_answers(server: KubeAPIServer) -> None:
    server.add_pod(pod("p1"))
    path = "/api/v1/namespaces/ns1/pods/p1"
    whole = raw_bytes(server, "GET", path)[1]
    server.inject(Truncated(), times=1)
    code, body = raw_bytes(server, "GET", path)
    assert (code, body) == (200, whole[: len(whole) // 2])
    server.inject(CutShort(), times=1)
    with pytest.raises(http.client.IncompleteRead):
        raw_bytes(server, "GET", path)
    server.inject(Hang(30), times=1)
    with pytest.raises(TimeoutError):
        raw_bytes(server, "GET", path, timeout=0.5)
    server.clear_faults()  # the hanging request ends
    assert raw(server, "GET", path)[0] == 200


def test_inject_a_reset_mid_body() -> None:
    """An RST after half the body (seen on plain TCP: a TLS client reads the RST as the
    end of the stream, OpenSSL 3's unexpected EOF, which Python's ssl hands over as b'')."""
    with KubeAPIServer(token="t", tls=False) as server:
        server.add_pod(pod("p1"))
        server.inject(CutShort(reset=True), times=1)
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        conn.sendall(
            b"GET /api/v1/namespaces/ns1/pods/p1 HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer t\r\n\r\n"
        )
        received = b""
        with pytest.raises(ConnectionResetError):
            while data := conn.recv(65536):
                received += data
        conn.close()
        head, _, body = received.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        assert len(body) == length // 2


def test_set_down_refuses_connections(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("p1"))
    assert v1.read_namespaced_pod("p1", "ns1").metadata.name == "p1"  # pooled connection
    server.set_down(True)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        v1.read_namespaced_pod("p1", "ns1")
    assert isinstance(err.value.reason, urllib3.exceptions.NewConnectionError)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)
    server.set_down(False)
    assert v1.read_namespaced_pod("p1", "ns1").metadata.name == "p1"


def test_set_down_cuts_open_watches(server: KubeAPIServer, v1: Any) -> None:
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for _ in new_watch().stream(v1.list_namespaced_pod, "ns1", timeout_seconds=30):
                pass
        except Exception as e:
            errors.append(e)

    thread = threading.Thread(target=consume)
    thread.start()
    assert server.wait_for_watchers(1)
    server.set_down(True)
    thread.join(5)
    assert not thread.is_alive()
    # The server's side of the watch ends on its own thread, just after the client's.
    deadline = time.monotonic() + 5
    while server.store.changes.watchers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.store.changes.watchers == 0


def test_request_counting(server: KubeAPIServer, v1: Any) -> None:
    server.add_pod(pod("p1"))
    v1.read_namespaced_pod("p1", "ns1")
    v1.list_namespaced_pod("ns1", field_selector="spec.nodeName=node1")
    v1.patch_namespaced_pod("p1", "ns1", {"metadata": {"labels": {"a": "b"}}})
    assert server.requests == [
        ("GET", "/api/v1/namespaces/ns1/pods/p1"),
        ("GET", "/api/v1/namespaces/ns1/pods?fieldSelector=spec.nodeName=node1"),
        ("PATCH", "/api/v1/namespaces/ns1/pods/p1"),
    ]
    assert server.request_count() == 3
    assert server.request_count("GET") == 2
    assert server.request_count("get", path_contains="spec.nodeName=node1") == 1
    assert server.request_count(path_contains="/pods/p1") == 2
    server.reset_requests()
    assert server.request_count() == 0
    assert server.requests == []


def test_ippools_are_served_with_resource_version_conflicts(server: KubeAPIServer) -> None:
    """multinet-ipam's custom resource: discovery at its own version, create, and a replace
    whose resourceVersion is stale refused with the real 409 Conflict."""
    base = "/apis/ipam.multinet.dev/v1alpha1"
    code, _, doc = raw(server, "GET", base)
    assert code == 200 and doc["resources"][0]["kind"] == "IPPool"
    _, _, group = raw(server, "GET", "/apis/ipam.multinet.dev")
    assert group["preferredVersion"]["groupVersion"] == "ipam.multinet.dev/v1alpha1"
    pools = f"{base}/namespaces/kube-system/ippools"
    body = {
        "apiVersion": "ipam.multinet.dev/v1alpha1",
        "kind": "IPPool",
        "metadata": {"name": "10.1.0.0-24"},
        "spec": {"range": "10.1.0.0/24", "allocations": {}},
    }
    code, _, created = raw(server, "POST", pools, body)
    assert code == 201, created
    code, _, again = raw(server, "POST", pools, body)
    assert (code, again["reason"]) == (409, "AlreadyExists")
    first = {**created, "spec": {"range": "10.1.0.0/24", "allocations": {"1": {"ifname": "a"}}}}
    code, _, stored = raw(server, "PUT", f"{pools}/10.1.0.0-24", first)
    assert code == 200
    assert int(stored["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    late = {**created, "spec": {"range": "10.1.0.0/24", "allocations": {"1": {"ifname": "b"}}}}
    code, _, status = raw(server, "PUT", f"{pools}/10.1.0.0-24", late)  # the old version
    assert (code, status["reason"]) == (409, "Conflict")
    assert [p["spec"]["allocations"] for p in server.ip_pools()] == [{"1": {"ifname": "a"}}]
