"""Never a pod without what it asked for (Multus #407, #492: an API failure taken for an
empty answer, a pod running with the cluster network only).

One table of faults between multinet and what it reads on ADD (the pod and its
networks annotation, a NAD, the kubelet's device IDs), each run in thin mode (the
`multinet` executable the host's CNI directory holds) and in thick mode (the native shim,
forwarding to a real multinetd). Every fault that does not heal within multinet's bounded
retries is an ADD error with the row's code and a message naming the request, the object
and what went wrong (HTTP status and reason, the transport failure): never a success with
fewer networks, never code 999 or a traceback, nothing left (no interface, no IPAM
allocation, no journal, no network-status). The runtime's DEL that follows succeeds with
the fault still there. A fault that heals within the retries is a normal ADD.

Thick mode: the daemon's watches are held (a watch request hangs) and the pod and the NAD
are created after its caches synced, so its reads miss the cache and go to the API server,
as for a pod whose watch event has not reached the daemon yet.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.daemon.sandbox import DaemonProc, Sandbox
from tests.support.kubeapi import KubeAPIServer
from tests.support.kubeapi_faults import Body, CutShort, Fault, Hang, Status, Truncated
from tests.support.kubelet import FakeKubelet

UNKNOWN_CONTAINER, INVALID_CONFIG, TRY_AGAIN_LATER, CLUSTER_ERROR = 3, 7, 11, 101
TRACEBACK = "Traceback (most recent call last)"
STATUS = "k8s.v1.cni.cncf.io/network-status"
NODE = "node-1"
NAMESPACE, POD = "default", "web"
RESOURCE = "example.com/nic"
POD_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}"
NAD_PATH = f"/apis/k8s.cni.cncf.io/v1/namespaces/{NAMESPACE}/network-attachment-definitions/extra"
POD_WHAT = f"get pod {NAMESPACE}/{POD}"
NAD_WHAT = f"get NetworkAttachmentDefinition {NAMESPACE}/extra"
LB_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"


@dataclass(frozen=True)
class Row:
    """A fault at `target` ("pod", "nad", "down": the API server refuses connections),
    `times` times (None: always); the ADD's answer: `code` (None: success) and words its
    message holds."""

    target: str
    fault: Fault | None
    times: int | None
    code: int | None
    words: tuple[str, ...] = ()


def _rows() -> list[Any]:
    rows: dict[str, Row] = {}
    for target, what in (("pod", POD_WHAT), ("nad", NAD_WHAT)):
        refused = ("API server refused access", "check the kubeconfig credentials and RBAC")
        rows |= {
            f"{target}-401": Row(
                target, Status(401), None, CLUSTER_ERROR, (what, "401 Unauthorized", *refused)
            ),
            f"{target}-403": Row(
                target, Status(403), None, CLUSTER_ERROR, (what, "403 Forbidden", *refused)
            ),
            f"{target}-409": Row(target, Status(409), None, CLUSTER_ERROR, (what, "409 Conflict")),
            f"{target}-429": Row(
                target, Status(429), None, TRY_AGAIN_LATER, (what, "429 Too Many Requests")
            ),
            f"{target}-500": Row(
                target, Status(500), None, TRY_AGAIN_LATER, (what, "500 Internal Server Error")
            ),
            f"{target}-503": Row(
                target, Status(503), None, TRY_AGAIN_LATER, (what, "503 Service Unavailable")
            ),
            f"{target}-503-healed": Row(target, Status(503), 2, None),
            f"{target}-502-html": Row(
                target, Body(502, LB_PAGE, "text/html"), None, TRY_AGAIN_LATER, (what, "502")
            ),
            f"{target}-reset-mid-body": Row(
                target, CutShort(reset=True), None, TRY_AGAIN_LATER, (what, "unreachable")
            ),
            f"{target}-reset-healed": Row(target, CutShort(reset=True), 1, None),
            f"{target}-cut-short": Row(
                target, CutShort(), None, TRY_AGAIN_LATER, (what, "unreachable", "cut short")
            ),
            f"{target}-truncated-json": Row(
                target, Truncated(), None, CLUSTER_ERROR, (what, "invalid JSON")
            ),
            f"{target}-not-json": Row(
                target,
                Body(200, b"<html>sign in</html>\n", "text/html"),
                None,
                CLUSTER_ERROR,
                (what, "invalid JSON"),
            ),
        }
    # 3 attempts of 10 s: the pod's row alone (a NAD's read takes the same path).
    rows["pod-timeout"] = Row(
        "pod", Hang(), None, TRY_AGAIN_LATER, (POD_WHAT, "unreachable", "timed out")
    )
    rows["pod-404"] = Row("pod", Status(404), None, UNKNOWN_CONTAINER, (f"pod {NAMESPACE}/{POD}",))
    rows["nad-404"] = Row(
        "nad",
        Status(404),
        None,
        INVALID_CONFIG,
        (f"NetworkAttachmentDefinition {NAMESPACE}/extra", "not found"),
    )
    rows["refused"] = Row(
        "down", None, None, TRY_AGAIN_LATER, (POD_WHAT, "unreachable", "connection refused")
    )
    slow = {"pod-timeout"}
    return [
        pytest.param(row, id=name, marks=[pytest.mark.timeout(240)] if name in slow else [])
        for name, row in rows.items()
    ]


@dataclass
class World:
    """The API test server with the cluster network's NAD, multinet in one mode, and
    helpers to create the pod, run CNI commands and check what is left."""

    mode: str
    sandbox: Sandbox
    kubeapi: KubeAPIServer
    kubeconfig: str
    daemon: DaemonProc | None = None
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    netns: str = ""

    def nad(self, namespace: str, name: str, config: dict[str, Any], **annotations: str) -> None:
        self.kubeapi.add_nad(
            {
                "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
                "spec": {"config": json.dumps(config)},
            }
        )

    def pod(self, networks: str) -> None:
        self.kubeapi.add_pod(
            {
                "metadata": {
                    "name": POD,
                    "namespace": NAMESPACE,
                    "uid": self.uid,
                    "annotations": {"k8s.v1.cni.cncf.io/networks": networks},
                },
                "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "pause"}]},
            }
        )

    def netconf(self, **keys: Any) -> dict[str, Any]:
        conf = {k: v for k, v in self.sandbox.netconf().items() if k != "delegates"}
        conf |= {"clusterNetwork": "cluster", "multusNamespace": "kube-system", **keys}
        if self.mode == "thin":
            conf |= {"type": "multinet", "kubeconfig": self.kubeconfig}
            conf.pop("daemonSocketPath")
        return conf

    def run(self, command: str, conf: dict[str, Any]) -> tuple[int, dict[str, Any] | None, str]:
        argv = [self.sandbox.shim_path if self.mode == "thick" else self.sandbox.thin_path]
        args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE={NAMESPACE};K8S_POD_NAME={POD}"
        args += f";K8S_POD_UID={self.uid}"
        proc = self.sandbox.shim(command, "c1", self.netns, conf, argv=argv, CNI_ARGS=args)
        assert TRACEBACK not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        if self.mode == "thick":
            assert "in-process" not in proc.stderr, "the shim fell back: the daemon must answer"
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        return proc.returncode, out, proc.stderr

    def network_status(self) -> str | None:
        pod = self.kubeapi.get_pod(NAMESPACE, POD)
        assert pod is not None
        annotations: dict[str, str] = pod["metadata"].get("annotations") or {}
        return annotations.get(STATUS)

    def assert_nothing_attached(self) -> None:
        assert self.sandbox.links(self.netns) == [], "an interface is left in the pod"
        assert self.sandbox.allocations() == [], "an IPAM allocation is left"
        assert self.sandbox.journals() == [], "a journal is left"
        assert self.sandbox.bridge_ports() == [], "a bridge port is left"
        assert self.network_status() is None, "network-status written for a failed ADD"

    def assert_no_traceback(self) -> None:
        if self.daemon is not None:
            log = self.daemon.log()
            assert TRACEBACK not in log, log
            assert '"code": 999' not in log and "code=999" not in log, log


@pytest.fixture(params=["thin", "thick"])
def world(
    request: pytest.FixtureRequest, sandbox: Sandbox, kubeapi: KubeAPIServer
) -> Iterator[World]:
    kubeconfig = kubeapi.write_kubeconfig(str(sandbox.tmp / "kubeconfig"))
    w = World(request.param, sandbox, kubeapi, kubeconfig)
    cluster = sandbox.netconf()["delegates"][0]
    w.nad("kube-system", "cluster", cluster)
    w.netns = sandbox.netns()
    if w.mode == "thick":
        # Held watches: what is created from now on reaches the daemon by a GET only.
        kubeapi.inject(Hang(600), path_contains="watch=true", method="GET")
        w.daemon = sandbox.daemon(
            kubeconfig=kubeconfig,
            nodeName=NODE,
            generateConfig=False,
            clusterNetwork="cluster",
            multusNamespace="kube-system",
        )
        sandbox.wait_for(lambda: w.daemon is not None and w.daemon.get("/readyz")[0] == 200)
    try:
        yield w
    finally:
        kubeapi.clear_faults()
        w.assert_no_traceback()


def _inject(w: World, row: Row) -> None:
    if row.target == "down":
        w.kubeapi.set_down(True)
        return
    assert row.fault is not None
    path = POD_PATH if row.target == "pod" else NAD_PATH
    w.kubeapi.inject(row.fault, times=row.times, path_contains=path, method="GET")


@pytest.mark.parametrize("row", _rows())
def test_api_fault_reading_the_pod_or_its_nad(world: World, row: Row) -> None:
    w = world
    w.nad(NAMESPACE, "extra", {"cniVersion": "1.0.0", "name": "extra", "type": "mndtest"})
    w.pod("extra")
    conf = w.netconf()
    _inject(w, row)

    rc, out, err = w.run("ADD", conf)

    if row.code is None:
        assert rc == 0, (out, err)
        assert w.sandbox.links(w.netns) == ["eth0"]
        assert [c.split()[:3] for c in w.sandbox.calls()] == [["ADD", "c1", "net1"]]
    else:
        assert rc != 0 and out is not None, (out, err)
        assert out["code"] == row.code, out
        text = f"{out['msg']}: {out.get('details', '')}"
        for words in row.words:
            assert words in text, f"{words!r} not in {text!r}"
        assert w.sandbox.calls() == [], "a delegate ran"
        w.assert_nothing_attached()
    # The runtime's DEL, with the fault still there.
    rc, out, err = w.run("DEL", conf)
    assert rc == 0, (out, err)
    w.kubeapi.set_down(False)
    w.kubeapi.clear_faults()
    w.sandbox.assert_clean(w.netns)


def test_cache_not_synced_and_api_failing(sandbox: Sandbox, kubeapi: KubeAPIServer) -> None:
    """Thick mode only: a daemon whose caches never synced (every list and GET answers
    503) answers code 11, saying so; it never plans from an empty cache."""
    kubeconfig = kubeapi.write_kubeconfig(str(sandbox.tmp / "kubeconfig"))
    w = World("thick", sandbox, kubeapi, kubeconfig)
    w.nad("kube-system", "cluster", sandbox.netconf()["delegates"][0])
    w.nad(NAMESPACE, "extra", {"cniVersion": "1.0.0", "name": "extra", "type": "mndtest"})
    w.pod("extra")
    w.netns = sandbox.netns()
    kubeapi.inject(Status(503), method="GET")
    w.daemon = sandbox.daemon(
        kubeconfig=kubeconfig,
        nodeName=NODE,
        generateConfig=False,
        clusterNetwork="cluster",
        multusNamespace="kube-system",
    )
    status, _ = w.daemon.get("/readyz")
    assert status != 200
    try:
        rc, out, err = w.run("ADD", w.netconf())
        assert rc != 0 and out is not None, (out, err)
        assert out["code"] == TRY_AGAIN_LATER, out
        for words in (POD_WHAT, "503 Service Unavailable", "not synced"):
            assert words in out["msg"], out
        w.assert_nothing_attached()
        assert w.run("DEL", w.netconf())[0] == 0
    finally:
        kubeapi.clear_faults()
    sandbox.assert_clean(w.netns)
    w.assert_no_traceback()


# -- the kubelet's device IDs ----------------------------------------------------------


def _kubelet_crashed(k: FakeKubelet) -> None:
    k.crash()


def _kubelet_gone(k: FakeKubelet) -> None:
    k.stop()  # no socket and no checkpoint


def _kubelet_failing(k: FakeKubelet) -> None:
    k.fail(grpc.StatusCode.INTERNAL, "podresources: internal error")


def _kubelet_hanging(k: FakeKubelet) -> None:
    k.hang(30)


def _pod_unknown(k: FakeKubelet) -> None:
    k.pods.clear()


def _no_device_assigned(k: FakeKubelet) -> None:
    k.pods.clear()
    k.assign(NAMESPACE, POD, "example.com/other", ["0000:04:00.1"])


def _kubelet_fine(k: FakeKubelet) -> None:
    pass


KUBELET_ROWS = [
    pytest.param(_kubelet_fine, None, (), id="served"),
    pytest.param(_kubelet_crashed, TRY_AGAIN_LATER, ("PodResources", "UNAVAILABLE"), id="crashed"),
    pytest.param(_kubelet_gone, TRY_AGAIN_LATER, ("PodResources socket", "checkpoint"), id="gone"),
    pytest.param(_kubelet_failing, TRY_AGAIN_LATER, ("PodResources", "INTERNAL"), id="failing"),
    pytest.param(
        _kubelet_hanging,
        TRY_AGAIN_LATER,
        ("PodResources", "DEADLINE_EXCEEDED"),
        id="timeout",
        marks=pytest.mark.timeout(180),
    ),
    pytest.param(_pod_unknown, TRY_AGAIN_LATER, ("PodResources", "NOT_FOUND"), id="pod-unknown"),
    pytest.param(_no_device_assigned, INVALID_CONFIG, (RESOURCE, "assigned 0"), id="no-device"),
]


@pytest.mark.parametrize(("fault", "code", "words"), KUBELET_ROWS)
def test_kubelet_fault_reading_the_pods_devices(
    world: World, fault: Any, code: int | None, words: tuple[str, ...]
) -> None:
    w = world
    kubelet = FakeKubelet(str(w.sandbox.run / f"kubelet-{w.mode}.sock")).start()
    try:
        kubelet.assign(NAMESPACE, POD, RESOURCE, ["0000:03:02.1"])
        config = {"cniVersion": "1.0.0", "name": "extra", "type": "mndtest"}
        w.nad(NAMESPACE, "extra", config, **{"k8s.v1.cni.cncf.io/resourceName": RESOURCE})
        w.pod("extra")
        conf = w.netconf(
            podResourcesSocket=kubelet.socket_path,
            deviceCheckpointFile=str(Path(w.sandbox.tmp) / "no-checkpoint"),
        )
        fault(kubelet)

        rc, out, err = w.run("ADD", conf)

        if code is None:
            assert rc == 0, (out, err)
            assert w.sandbox.links(w.netns) == ["eth0"]
        else:
            assert rc != 0 and out is not None, (out, err)
            assert out["code"] == code, out
            text = f"{out['msg']}: {out.get('details', '')}"
            for word in words:
                assert word in text, f"{word!r} not in {text!r}"
            assert w.sandbox.calls() == [], "a delegate ran"
            w.assert_nothing_attached()
        rc, out, err = w.run("DEL", conf)
        assert rc == 0, (out, err)
        w.sandbox.assert_clean(w.netns)
    finally:
        kubelet.stop()
