"""deploy/: the manifests parse, and say what thick mode needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from multinet.daemon import config

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "multinet-daemonset.yaml"


def _docs() -> dict[str, dict[str, Any]]:
    with MANIFEST.open() as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return {d["kind"]: d for d in docs}


def test_manifest_parses_with_the_expected_objects() -> None:
    assert set(_docs()) == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    }


def test_rbac_grants_what_the_daemon_uses() -> None:
    rules = _docs()["ClusterRole"]["rules"]
    granted = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
    for need in [
        ("pods", "get"),
        ("pods", "list"),
        ("pods", "watch"),
        ("pods", "patch"),
        ("pods/status", "patch"),
        ("network-attachment-definitions", "get"),
        ("network-attachment-definitions", "list"),
        ("network-attachment-definitions", "watch"),
        ("events", "create"),
    ]:
        assert need in granted, need


def test_configmap_is_a_valid_daemon_config() -> None:
    raw = json.loads(_docs()["ConfigMap"]["data"]["daemon.json"])
    conf = config.load(raw, {"NODE_NAME": "n"})
    assert conf.socket_path == "/run/multinet/multinet.sock"
    assert conf.metrics_address == ("", 9190)


def test_daemonset_mounts_and_privileges() -> None:
    spec = _docs()["DaemonSet"]["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    (daemon,) = spec["containers"]
    assert daemon["securityContext"]["privileged"] is True
    mounts = {m["mountPath"]: m for m in daemon["volumeMounts"]}
    for path in (
        "/etc/cni/net.d",
        "/opt/cni/bin",
        "/run/multinet",
        "/var/lib/cni",
        "/var/run/netns",
    ):
        assert path in mounts, path
    assert mounts["/var/run/netns"]["mountPropagation"] == "Bidirectional"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert all(m["name"] in volumes for m in daemon["volumeMounts"])
    assert daemon["command"][:3] == ["multinetd", "--config", "/etc/multinet/daemon.json"]
    env = {e["name"]: e for e in daemon["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    (init,) = spec["initContainers"]
    assert "multinetctl install-shim /host/opt/cni/bin" in init["command"][-1]
