"""Surface 8: the networks annotation of a running pod (dynamic networks).

A real multinetd with `dynamicNetworks`, the API test server and one running pod whose
sandbox it attached; generated annotation values (the JSON and text forms, well formed
or not, naming NADs that exist or not, with or without interfaces, addresses, MACs,
default routes) are patched onto the pod one after the other, as `kubectl annotate`
would. The NADs the pod can ask for run the test plugin `mndtest` (no kernel work). The
promises, after each value (each from a pod with the cluster network alone): the daemon
stays up and healthy, logs no traceback and no internal error; nothing is left half-done
in the journal (every network "added"); the pod is never given a network its annotation
does not ask for; network-status lists
exactly what the journal holds; an annotation naming only existing NADs, without
interface names or routes, is applied exactly.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st

from multinet.cni.errors import CNIError
from multinet.networks.selection import parse_networks
from tests.integration.daemon.dynamic_cluster import Cluster, Pod
from tests.integration.daemon.sandbox import DaemonProc, Sandbox
from tests.integration.properties.harness import TRACEBACK, prop
from tests.support.kubeapi import KubeAPIServer

NADS = ("a", "b")  # mndtest networks in the pod's namespace
INTERVAL = 0.05
SETTLE = 1.5  # seconds to wait for a change that may not come (a no-op, a refusal)

ELEMENTS = st.fixed_dictionaries(
    {"name": st.sampled_from([*NADS, "nosuch", "", "A", "a/b"])},
    optional={
        "namespace": st.sampled_from(["default", "other", "", "Default"]),
        "interface": st.sampled_from(["net1", "net2", "x1", "eth0", "bad/if", "i" * 16, ""]),
        "ips": st.sampled_from([["10.9.0.5/24"], ["nope"], [], "10.9.0.5/24"]),
        "mac": st.sampled_from(["02:00:00:00:00:01", "zz", 7]),
        "default-route": st.sampled_from([["10.9.0.1"], [], "x"]),
        "cni-args": st.sampled_from([{"k": "v"}, [], None]),
    },
)
TOKENS = ["a", "b", "a@x1", "b@net2", "nosuch", "default/a", "other/a", "a@eth0", "a@", "@"]
VALID = st.fixed_dictionaries(  # well formed, naming existing NADs: applied exactly
    {"name": st.sampled_from(NADS)},
    optional={
        "namespace": st.just("default"),
        "ips": st.sampled_from([["10.9.0.5/24"], ["10.9.0.6/24", "fd00::6/64"]]),
        "mac": st.sampled_from(["02:00:00:00:00:01", "02-00-00-00-00-02"]),
        "cni-args": st.just({"k": "v"}),
    },
)
ANNOTATIONS = st.one_of(
    st.lists(VALID, max_size=4).map(json.dumps),
    st.lists(st.sampled_from(NADS), max_size=4).map(", ".join),
    st.lists(ELEMENTS, max_size=4).map(json.dumps),
    st.lists(st.sampled_from(TOKENS), max_size=4).map(", ".join),
    st.text(max_size=24),
    st.sampled_from(["", "[", "{}", "[1]", "null", '[{"name": "a"}, {"name": "a"}]']),
)


@dataclass
class Running:
    cluster: Cluster
    daemon: DaemonProc
    pod: Pod

    def journal(self) -> list[dict[str, Any]]:
        (path,) = (self.cluster.sandbox.state / "journal").glob("*.json")
        entries: list[dict[str, Any]] = json.loads(path.read_text())["entries"]
        return entries

    def changes(self) -> float:
        text = self.daemon.get("/metrics")[1]
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("multinet_network_changes_total{")
        )


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    box = Sandbox(tmp_path_factory.mktemp("dynamic"))
    api = KubeAPIServer(token="t")
    api.start()
    try:
        box.create_bridge()
        c = Cluster(box, api)
        for name in NADS:
            c.nad("default", name, {"cniVersion": "1.0.0", "name": name, "type": "mndtest"})
        d = c.daemon(interval=INTERVAL)
        yield Running(c, d, c.running())
    finally:
        box.close()
        api.stop()


def asked(annotation: str) -> collections.Counter[str] | None:
    """The NADs the annotation asks for, by name; None when it does not parse."""
    try:
        return collections.Counter(
            f"{s.namespace}/{s.name}" for s in parse_networks(annotation, "default")
        )
    except CNIError:
        return None


def exact(annotation: str) -> collections.Counter[str] | None:
    """What must be attached after it, when that is certain: existing NADs only, no
    interface names (which may collide), no routes (refused on a new network)."""
    try:
        selections = parse_networks(annotation, "default")
    except CNIError:
        return None
    if any(
        s.interface
        or s.default_route
        or s.no_default_route
        or s.source_routing
        or s.namespace != "default"
        or s.name not in NADS
        for s in selections
    ):
        return None
    return collections.Counter(f"default/{s.name}" for s in selections)


def reset(r: Running) -> None:
    if attached(r):
        r.cluster.annotate(r.pod, "")
        deadline = time.monotonic() + 20
        while attached(r) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert not attached(r), r.journal()


def attached(r: Running) -> collections.Counter[str]:
    return collections.Counter(e["name"] for e in r.journal() if e["origin"] == "annotation")


@pytest.mark.root
@prop(
    ci=25,
    annotation=(ANNOTATIONS, ['[{"name": "a"}, {"name": "b", "interface": "x1"}]', "a, a, b", ""]),
)
def test_every_annotation_of_a_running_pod(running: Running, annotation: str) -> None:
    r = running
    reset(r)  # each example from the same state: the cluster network alone
    before = r.changes()
    r.cluster.annotate(r.pod, annotation)
    want = exact(annotation)
    deadline = time.monotonic() + 20
    if want is not None:  # it is applied: wait for it
        while attached(r) != want and time.monotonic() < deadline:
            time.sleep(0.02)
        assert attached(r) == want, (annotation, r.journal())
    else:  # maybe nothing happens: give it its chance
        settle = time.monotonic() + SETTLE
        while r.changes() == before and time.monotonic() < settle:
            time.sleep(0.02)
    # network-status follows the journal (written after each change, retried if not)
    while time.monotonic() < deadline:
        journal = sorted((e["name"], e["ifname"]) for e in r.journal())
        if sorted(r.cluster.status(r.pod)) == journal:
            break
        time.sleep(0.02)
    assert sorted(r.cluster.status(r.pod)) == sorted((e["name"], e["ifname"]) for e in r.journal())
    assert all(e["state"] == "added" for e in r.journal()), r.journal()
    wanted = asked(annotation)
    if wanted is not None:
        assert not attached(r) - wanted, (annotation, r.journal())  # nothing not asked for
    log = r.daemon.log()
    assert TRACEBACK not in log and "internal error" not in log, log[-3000:]
    assert r.daemon.proc.poll() is None and r.daemon.get("/healthz")[0] == 200
