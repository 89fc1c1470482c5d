"""When the cluster misbehaves or the pod's request is wrong: clear errors, nothing
attached, nothing leaked; DEL always succeeds from the journal.

Each scenario runs on both cluster sources (see conftest.py) unless it is about the
API server itself.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import CniOutcome, K8s, LeakChecker, NetInfo, PodRef, State
    from tests.support.kubeapi import KubeAPIServer

UNKNOWN_CONTAINER, INVALID_CONFIG, TRY_AGAIN_LATER, CLUSTER_ERROR = 3, 7, 11, 101
kubeapi_only = pytest.mark.parametrize("source", ["kubeapi"], indirect=True)


def cidr(subnet: ipaddress.IPv4Network, n: int) -> str:
    return f"{subnet.network_address + n}/{subnet.prefixlen}"


def lab_pod(k8s: K8s, annotation: str = "lab") -> tuple[PodRef, str]:
    """The NAD default/lab (bridge + host-local), a pod with `annotation`, a container ID."""
    k8s.bridge_nad("lab")
    return k8s.pod(annotation), k8s.container_id()


def attached(k8s: K8s, net: NetInfo, netns: str, pod: PodRef, cid: str) -> None:
    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert set(net.links(netns)) == {"eth0", "net1"}


def assert_nothing_attached(k8s: K8s, net: NetInfo, netns: str, pod: PodRef) -> None:
    assert net.links(netns) == {}
    assert k8s.source.network_status(pod.namespace, pod.name) is None


def refused(
    k8s: K8s, net: NetInfo, netns: str, pod: PodRef, cid: str, code: int, *culprits: str
) -> dict[str, Any]:
    """The pod's ADD fails with `code`, its message naming every culprit, and attaches
    nothing (no interface, no network-status); its error JSON."""
    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc != 0
    assert out["code"] == code, out
    for culprit in culprits:
        assert culprit in out["msg"], f"{culprit!r} not in {out['msg']!r}"
    assert_nothing_attached(k8s, net, netns, pod)
    return dict(out)


# -- DEL from the journal ---------------------------------------------------------------


def test_del_succeeds_from_the_journal_while_the_source_is_down(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = lab_pod(k8s)
    attached(k8s, net, netns, pod, cid)

    k8s.source.go_down()
    try:
        rc, out, _ = k8s.delete(pod, netns, cid)
        assert rc == 0, out
        leaks.assert_clean()
        # A repeated DEL (the runtime retries) is fine too.
        assert k8s.delete(pod, netns, cid).rc == 0
    finally:
        k8s.source.come_up()


def _delete_the_pod(k8s: K8s, pod: PodRef, state: State) -> None:
    k8s.source.delete_pod(pod.namespace, pod.name)


def _delete_the_nads(k8s: K8s, pod: PodRef, state: State) -> None:
    k8s.source.delete_nad("default", "lab")
    k8s.source.delete_nad("kube-system", k8s.CLUSTER_NAD)


def _wipe_the_journal(k8s: K8s, pod: PodRef, state: State) -> None:
    """multinet's state is lost: DEL plans again from the pod."""
    files = list(state.journal_dir.iterdir())
    assert files != []
    for f in files:
        f.unlink()


@pytest.mark.parametrize(
    "since_add",
    [
        pytest.param(_delete_the_pod, id="pod-deleted"),
        pytest.param(_delete_the_nads, id="nads-deleted"),
        pytest.param(_wipe_the_journal, id="journal-wiped"),
    ],
)
def test_del_succeeds_whatever_happened_since_add(
    since_add: Callable[[K8s, PodRef, State], None],
    k8s: K8s,
    netns: str,
    net: NetInfo,
    leaks: LeakChecker,
    state: State,
) -> None:
    pod, cid = lab_pod(k8s)
    attached(k8s, net, netns, pod, cid)

    since_add(k8s, pod, state)
    rc, out, _ = k8s.delete(pod, netns, cid)
    assert rc == 0, out
    leaks.assert_clean()


# -- ADD refused ----------------------------------------------------------------------


def test_add_while_the_source_is_down_fails_and_attaches_nothing(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = lab_pod(k8s)

    k8s.source.go_down()
    try:
        rc, out, _ = k8s.add(pod, netns, cid)
        assert rc != 0
        assert net.links(netns) == {}
        assert leaks.journal_files() == []
        # The runtime calls DEL after a failed ADD: it must succeed, source down or not.
        assert k8s.delete(pod, netns, cid).rc == 0
    finally:
        k8s.source.come_up()
    if k8s.source.kind == "kubeapi":
        assert out["code"] == TRY_AGAIN_LATER  # transient: the kubelet retries
        assert "unreachable" in out["msg"] and f"pod {pod.key}" in out["msg"]
    else:
        assert out["code"] == INVALID_CONFIG  # a missing directory is not transient
        assert k8s.netconf()["manifests"] in out["msg"]
    assert k8s.source.network_status(pod.namespace, pod.name) is None
    leaks.assert_clean()


def test_missing_nad_names_it_emits_no_network_found_and_attaches_nothing(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = lab_pod(k8s, "lab, team-x/ghost")

    refused(k8s, net, netns, pod, cid, INVALID_CONFIG, "team-x/ghost", "not found")
    events = k8s.source.events()
    assert [(e.namespace, e.pod, e.type, e.reason) for e in events] == [
        (pod.namespace, pod.name, "Warning", "NoNetworkFound"),
        (pod.namespace, pod.name, "Warning", "FailedAttach"),
    ]
    assert all("team-x/ghost" in e.message for e in events)
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


def test_pod_uid_mismatch_is_an_error(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = lab_pod(k8s)
    stale_uid = "00000000-0000-4000-8000-000000000001"

    rc, out, _ = k8s.add(pod, netns, cid, uid=stale_uid)
    assert rc != 0
    assert out["code"] == UNKNOWN_CONTAINER
    assert pod.uid in out["msg"] and stale_uid in out["msg"]
    assert_nothing_attached(k8s, net, netns, pod)
    leaks.assert_clean()


def test_pod_not_found_is_an_error(k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker) -> None:
    pod = k8s.pod()
    k8s.source.delete_pod(pod.namespace, pod.name)
    cid = k8s.container_id()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc != 0
    assert out["code"] == UNKNOWN_CONTAINER
    assert f"pod {pod.key} not found" in out["msg"]
    assert net.links(netns) == {}
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


@kubeapi_only
@pytest.mark.parametrize(
    ("status", "failures", "code", "words"),
    [
        pytest.param(503, 2, None, "", id="503-retried"),
        pytest.param(503, 3, TRY_AGAIN_LATER, "503", id="503-gives-up"),
        pytest.param(429, 3, TRY_AGAIN_LATER, "429", id="429-gives-up"),
        pytest.param(403, 1, CLUSTER_ERROR, "refused access", id="403"),
    ],
)
def test_api_errors_reading_the_pod(
    status: int,
    failures: int,
    code: int | None,
    words: str,
    k8s: K8s,
    kubeapi: KubeAPIServer,
    netns: str,
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    pod, cid = lab_pod(k8s)
    kubeapi.fail_next(failures, status, path_contains=f"/pods/{pod.name}", method="GET")

    rc, out, _ = k8s.add(pod, netns, cid)
    if code is None:
        assert rc == 0, out
        assert kubeapi.request_count("GET", f"/pods/{pod.name}") == failures + 1
        assert k8s.delete(pod, netns, cid).rc == 0
    else:
        assert rc != 0
        assert out["code"] == code
        assert words in out["msg"] and f"pod {pod.key}" in out["msg"]
        # A bounded number of attempts: multinet's own (3), no hidden client retries.
        assert kubeapi.request_count("GET", f"/pods/{pod.name}") == failures
        assert_nothing_attached(k8s, net, netns, pod)
    leaks.assert_clean()


def test_failing_delegate_rolls_back_and_reports_failed_attach(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker, token: str
) -> None:
    k8s.source.add_nad(
        "default", "nomaster", k8s.macvlan_config(address="10.1.1.1/24", master=f"mnx{token}gone")
    )
    pod, cid = lab_pod(k8s, "lab, nomaster")

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc != 0
    assert "'default/nomaster' (net2)" in out["msg"]
    assert_nothing_attached(k8s, net, netns, pod)
    events = k8s.source.events()
    assert [(e.pod, e.type, e.reason) for e in events] == [(pod.name, "Warning", "FailedAttach")]
    assert "default/nomaster" in events[0].message
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


# -- the status write ------------------------------------------------------------------------


def test_failed_status_write_fails_add_and_removes_everything(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = lab_pod(k8s)
    code = k8s.source.fail_status_write()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc != 0
    assert out["code"] == code
    assert f"network-status for {pod.key}" in out["msg"] or (
        f"network-status of pod {pod.key}" in out["msg"]
    )
    assert_nothing_attached(k8s, net, netns, pod)
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


@kubeapi_only
@pytest.mark.parametrize(
    ("failures", "code"), [pytest.param(2, None, id="retried"), pytest.param(3, 11, id="gives-up")]
)
def test_status_write_retries_server_errors(
    failures: int,
    code: int | None,
    k8s: K8s,
    kubeapi: KubeAPIServer,
    netns: str,
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    subnet = k8s.bridge_nad("lab")
    pod = k8s.pod("lab")
    cid = k8s.container_id()
    kubeapi.fail_next(failures, 500, path_contains="/status", method="PATCH")

    rc, out, _ = k8s.add(pod, netns, cid)
    assert kubeapi.request_count("PATCH", "/status") == min(failures + 1, 3)
    if code is None:
        assert rc == 0, out
        status = k8s.source.network_status(pod.namespace, pod.name)
        assert status is not None
        assert [s["ips"] for s in status][1] == [str(subnet.network_address + 2)]
        assert k8s.delete(pod, netns, cid).rc == 0
    else:
        assert (rc != 0, out["code"]) == (True, code)
        assert_nothing_attached(k8s, net, netns, pod)
        reasons = [e.reason for e in k8s.source.events()]
        assert reasons == ["FailedAttach"]
    leaks.assert_clean()


@kubeapi_only
def test_pod_recreated_during_add_does_not_get_the_old_pods_status(
    k8s: K8s, kubeapi: KubeAPIServer, netns: str, net: NetInfo, leaks: LeakChecker, state: State
) -> None:
    """The UID in the status patch is a precondition: a pod deleted and recreated under
    the same name while its sandbox was being wired is not given that sandbox's status."""
    gate = state.root / "gate"
    gate.mkdir()
    state.script(
        "gate",
        f"""
touch "{gate}/$CNI_COMMAND.started"
i=0
while [ ! -e "{gate}/go" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
exec /usr/lib/cni/tuning
""",
    )
    k8s.bridge_nad("lab", plugins=[{"type": "gate"}])
    pod = k8s.pod("lab")
    cid = k8s.container_id()
    outcome: list[CniOutcome] = []
    adder = threading.Thread(target=lambda: outcome.append(k8s.add(pod, netns, cid)))
    adder.start()
    try:
        deadline = time.monotonic() + 30
        while not (gate / "ADD.started").exists():
            assert time.monotonic() < deadline, "the gate plugin never ran"
            time.sleep(0.05)
        new_uid = str(uuid.uuid4())
        kubeapi.delete_pod(pod.namespace, pod.name)
        k8s.source.add_pod(pod.namespace, pod.name, new_uid, {})
    finally:
        (gate / "go").touch()
        adder.join(60)
    (rc, out, _) = outcome[0]
    assert rc != 0
    assert out["code"] == CLUSTER_ERROR
    assert f"network-status of pod {pod.key}" in out["msg"]
    recreated = kubeapi.get_pod(pod.namespace, pod.name)
    assert recreated is not None and recreated["metadata"]["uid"] == new_uid
    assert k8s.source.network_status(pod.namespace, pod.name) is None
    assert net.links(netns) == {}
    leaks.assert_clean()


# -- malformed requests ------------------------------------------------------------------------

MALFORMED_ANNOTATIONS = [
    pytest.param('[{"name": "lab"', "not valid JSON", id="bad-json"),
    pytest.param('{"name": "lab"}', "expected a JSON list", id="not-a-list"),
    pytest.param('[{"name": "Lab_1"}]', '"Lab_1"', id="bad-name"),
    pytest.param("lab@", '"lab@"', id="bad-comma-element"),
    pytest.param(
        '[{"name": "lab", "interface": "much-too-long-ifname"}]',
        '"much-too-long-ifname"',
        id="bad-ifname",
    ),
    pytest.param('[{"name": "lab", "ips": ["10.1.2.300/24"]}]', '"10.1.2.300/24"', id="bad-ip"),
    pytest.param('[{"name": "lab", "mac": "02:00:00:00:00"}]', '"02:00:00:00:00"', id="bad-mac"),
    pytest.param(
        '[{"name": "lab", "interface": "dup0"}, {"name": "lab", "interface": "dup0"}]',
        "'dup0'",
        id="duplicate-ifname",
    ),
    pytest.param("lab@eth0", "eth0", id="ifname-of-cluster-network"),
]


@pytest.mark.parametrize(("annotation", "culprit"), MALFORMED_ANNOTATIONS)
def test_malformed_annotation_is_a_config_error_quoting_the_culprit(
    annotation: str, culprit: str, k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    pod, cid = lab_pod(k8s, annotation)

    refused(k8s, net, netns, pod, cid, INVALID_CONFIG, culprit)
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


MALFORMED_NADS = [
    pytest.param('{"cniVersion": "1.0.0", "type": ', "not valid JSON", id="bad-json"),
    pytest.param('["bridge"]', "must be a JSON object", id="not-an-object"),
    pytest.param(
        '{"cniVersion": "1.0.0", "plugins": [{"bridge": "br0"}]}', "has no 'type'", id="no-type"
    ),
    pytest.param('{"cniVersion": "1.0.0", "type": "../bridge"}', "../bridge", id="type-is-a-path"),
    pytest.param('{"cniVersion": "1.0.0", "plugins": []}', "plugins", id="empty-plugins"),
    pytest.param('{"cniVersion": "one", "type": "bridge"}', "cniVersion", id="bad-version"),
]


@pytest.mark.parametrize(("config", "culprit"), MALFORMED_NADS)
def test_malformed_nad_config_is_a_config_error_naming_the_nad(
    config: str, culprit: str, k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    k8s.source.add_nad("default", "broken", config)
    pod, cid = lab_pod(k8s, "lab, broken")

    refused(k8s, net, netns, pod, cid, INVALID_CONFIG, "default/broken", culprit)
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()


# -- API requests --------------------------------------------------------------------------------


@kubeapi_only
def test_api_requests_per_add_and_del(
    k8s: K8s, kubeapi: KubeAPIServer, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    blue, green = k8s.bridge_nad("blue"), k8s.bridge_nad("green")
    pod = k8s.pod("blue, green")
    cid = k8s.container_id()
    kubeapi.reset_requests()

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    assert net.addresses(netns)["net2"] == [cidr(green, 2)]
    counts: dict[str, Any] = {
        "pod GET": kubeapi.request_count("GET", f"/pods/{pod.name}"),
        "NAD GET": kubeapi.request_count("GET", "/network-attachment-definitions/"),
        "status PATCH": kubeapi.request_count("PATCH", f"/pods/{pod.name}/status"),
        "event POST": kubeapi.request_count("POST", "/events"),
    }
    # Thin mode: the pod once, each NAD once (cluster network + 2), one status write,
    # one AddedInterface event per interface (the cluster network's too, as Multus).
    assert counts == {"pod GET": 1, "NAD GET": 3, "status PATCH": 1, "event POST": 3}
    assert len(kubeapi.requests) == 8, kubeapi.requests
    assert blue != green

    kubeapi.reset_requests()
    assert k8s.delete(pod, netns, cid).rc == 0
    assert kubeapi.requests == []  # DEL works from the journal alone
    leaks.assert_clean()


@kubeapi_only
def test_unwritable_local_record_copy_does_not_fail_add(
    k8s: K8s, kubeapi: KubeAPIServer, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    """The annotation on the API server is the record; multinet's local copy of it is a
    convenience. Failing the ADD after the PATCH would leave an annotation naming
    interfaces that were just removed."""
    subnet = k8s.bridge_nad("lab")
    pod = k8s.pod("lab")
    cid = k8s.container_id()
    (k8s.state.cni_dir / "status").write_text("not a directory\n")

    rc, out, _ = k8s.add(pod, netns, cid)
    assert rc == 0, out
    status = k8s.source.network_status(pod.namespace, pod.name)
    assert status is not None
    assert [s["ips"] for s in status] == [
        [str(k8s.cluster_subnet.network_address + 2)],
        [str(subnet.network_address + 2)],
    ]
    assert set(net.links(netns)) == {"eth0", "net1"}
    assert k8s.delete(pod, netns, cid).rc == 0
    leaks.assert_clean()
