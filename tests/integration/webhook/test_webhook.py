"""The admission webhook over real HTTPS (certificates from `multinetctl webhook certs`)
with real AdmissionReview payloads."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multinet.webhook.review import Options
from multinet.webhook.server import CertReloader, WebhookServer, serve_in_thread

NAD_GOOD = {
    "apiVersion": "k8s.cni.cncf.io/v1",
    "kind": "NetworkAttachmentDefinition",
    "metadata": {"name": "good", "namespace": "ns"},
    "spec": {"config": '{"cniVersion": "1.0.0", "type": "bridge", "ipam": {"type": "static"}}'},
}
NAD_BAD = {
    **NAD_GOOD,
    "metadata": {"name": "bad", "namespace": "ns"},
    "spec": {"config": '{"cniVersion": "1.0.0", "type": "macvlan", "mode": "bridged"}'},
}
NAD_KIND = {"group": "k8s.cni.cncf.io", "version": "v1", "kind": "NetworkAttachmentDefinition"}


def review(obj: Any, kind: dict[str, str] = NAD_KIND, op: str = "CREATE") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": kind,
            "resource": {"group": kind["group"], "version": "v1", "resource": "x"},
            "namespace": "ns",
            "operation": op,
            "userInfo": {"username": "admin"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    proc = subprocess.run(
        [sys.executable, "-m", "multinet.cli.multinetctl", "webhook", "certs", str(d),
         "--service", "localhost", "--namespace", "kube-system"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (d / "tls.key").stat().st_mode & 0o077 == 0
    return d


@pytest.fixture(params=[False, True], ids=["nads", "nads+pods"])
def server(request: pytest.FixtureRequest, certs: Path) -> Iterator[tuple[int, Path, bool]]:
    s = WebhookServer(
        ("127.0.0.1", 0),
        CertReloader(str(certs / "tls.crt"), str(certs / "tls.key")),
        Options(validate_pods=request.param),
    )
    serve_in_thread(s)
    try:
        yield s.server_address[1], certs, request.param
    finally:
        s.shutdown()
        s.server_close()


def post(server: tuple[int, Path, bool], body: bytes, path: str = "/validate") -> tuple[int, Any]:
    port, certs, _ = server
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))  # verifies the SAN
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data.startswith(b"{") else data


def test_valid_nad_is_allowed(server: tuple[int, Path, bool]) -> None:
    status, answer = post(server, json.dumps(review(NAD_GOOD)).encode())
    assert status == 200
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_invalid_nad_is_denied_with_the_message(server: tuple[int, Path, bool]) -> None:
    status, answer = post(server, json.dumps(review(NAD_BAD)).encode())
    assert status == 200
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        "NetworkAttachmentDefinition bad: spec.config.mode: bridged is not one of bridge, "
        "private, vepa, passthru"
    )


def test_warnings_reach_kubectl(server: tuple[int, Path, bool]) -> None:
    obj = {**NAD_GOOD, "spec": {"config": '{"cniVersion": "1.0.0", "type": "calico"}'}}
    _, answer = post(server, json.dumps(review(obj)).encode())
    assert answer["response"]["allowed"] is True
    assert "no schema for plugin type 'calico'" in answer["response"]["warnings"][0]


NAD_TYPO = {
    **NAD_GOOD,
    "metadata": {"name": "typo", "namespace": "ns"},
    "spec": {"config": '{"cniVersion": "1.0.0", "type": "macvlan", "mastr": "eth1"}'},
}
TYPO = (
    'spec.config.mastr: unknown key for macvlan (did you mean "master"?): the plugin would '
    "ignore it"
)


def test_an_unknown_plugin_key_is_denied_by_default(server: tuple[int, Path, bool]) -> None:
    _, answer = post(server, json.dumps(review(NAD_TYPO)).encode())
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"] == f"NetworkAttachmentDefinition typo: {TYPO}"


def test_unknown_plugin_keys_warn_admits_with_a_warning(certs: Path) -> None:
    s = WebhookServer(
        ("127.0.0.1", 0),
        CertReloader(str(certs / "tls.crt"), str(certs / "tls.key")),
        Options(unknown_plugin_keys="warn"),
    )
    serve_in_thread(s)
    try:
        _, answer = post((s.server_address[1], certs, False), json.dumps(review(NAD_TYPO)).encode())
        assert answer["response"]["allowed"] is True
        assert answer["response"]["warnings"] == [TYPO]
        _, answer = post((s.server_address[1], certs, False), json.dumps(review(NAD_BAD)).encode())
        assert answer["response"]["allowed"] is False  # only unknown keys are relaxed
    finally:
        s.shutdown()
        s.server_close()


def test_the_setting_is_a_flag_and_an_environment_variable() -> None:
    from multinet.webhook import main

    env = {**os.environ, "MULTINET_WEBHOOK_UNKNOWN_PLUGIN_KEYS": "sometimes"}
    proc = subprocess.run(
        [sys.executable, "-m", "multinet.webhook.main", "--cert", "/nonexistent"],
        capture_output=True, text=True, check=False, env=env, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2 and "invalid choice: 'sometimes'" in proc.stderr
    assert main.__doc__ is not None and "--unknown-plugin-keys deny|warn" in main.__doc__


def test_delete_is_allowed(server: tuple[int, Path, bool]) -> None:
    _, answer = post(server, json.dumps(review(None, op="DELETE")).encode())
    assert answer["response"]["allowed"] is True


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", json.dumps({"kind": "AdmissionReview"}).encode(),
     json.dumps({**review(NAD_GOOD), "request": {"kind": NAD_KIND}}).encode()],
    ids=["not-json", "list", "no-version", "no-uid"],
)  # fmt: skip
def test_malformed_review_is_400(server: tuple[int, Path, bool], body: bytes) -> None:
    status, answer = post(server, body)
    assert status == 400 and "error" in answer


def test_wrong_kind_is_allowed_with_a_warning(server: tuple[int, Path, bool]) -> None:
    kind = {"group": "", "version": "v1", "kind": "ConfigMap"}
    _, answer = post(server, json.dumps(review({"data": {}}, kind)).encode())
    assert answer["response"]["allowed"] is True
    assert "does not check 'ConfigMap'" in answer["response"]["warnings"][0]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a,,b", 'networks annotation element 2 "": empty element (stray comma?)'),
        (
            '[{"name": "a", "interfce": "net1"}]',
            'networks annotation element 1 {"name": "a", "interfce": "net1"}: unknown key '
            '"interfce" (did you mean "interface"?): ADD ignores it',
        ),
    ],
    ids=["empty element", "unknown key"],
)
def test_pods_with_a_bad_annotation(
    server: tuple[int, Path, bool], value: str, message: str
) -> None:
    annotations = {"k8s.v1.cni.cncf.io/networks": value}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": annotations}}
    kind = {"group": "", "version": "v1", "kind": "Pod"}
    _, answer = post(server, json.dumps(review(pod, kind)).encode())
    validate_pods = server[2]
    assert answer["response"]["allowed"] is (not validate_pods)
    if validate_pods:
        assert answer["response"]["status"]["message"] == message


def test_health_and_unknown_path(server: tuple[int, Path, bool]) -> None:
    status, _ = post(server, b"{}", "/nope")
    assert status == 404
    port, certs, _ = server
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
