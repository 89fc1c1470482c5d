"""Thin mode's AddedInterface events are off the pod's path (issue 21): the real `multinet`
answers the ADD and exits while a detached child posts them. The test server answers each
event POST only after SLOW seconds: posted in-line, 2 events would hold the ADD 2 x SLOW."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import LeakChecker, NetInfo
    from tests.integration.networks.conftest import K8s

SLOW = 2.0


@pytest.mark.parametrize("source", ["kubeapi"], indirect=True)
def test_the_add_answers_and_exits_before_its_events_are_posted(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = k8s.source.server  # type: ignore[attr-defined]
    take_fault = server.traffic.take_fault

    def slow_events(method: str, path: str) -> int | None:
        if method == "POST" and path.endswith("/events"):
            time.sleep(SLOW)
        return take_fault(method, path)

    monkeypatch.setattr(server.traffic, "take_fault", slow_events)
    k8s.bridge_nad("lab")
    pod = k8s.pod("lab")
    cid = k8s.container_id()
    start = time.monotonic()
    rc, out, _ = k8s.cni("ADD", k8s.netconf(), netns=netns, container_id=cid, args=pod.cni_args())
    took = time.monotonic() - start
    assert rc == 0, out
    assert took < SLOW, f"the ADD waited {took:.1f} s for its events"
    assert k8s.source.network_status(pod.namespace, pod.name)  # written before the answer
    assert set(net.links(netns)) == {"eth0", "net1"}
    deadline = time.monotonic() + 4 * SLOW + 10
    while len(server.events()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [e.reason for e in k8s.source.events()] == ["AddedInterface", "AddedInterface"]
    rc, out, _ = k8s.cni("DEL", k8s.netconf(), netns=netns, container_id=cid, args=pod.cni_args())
    assert rc == 0, out
    leaks.assert_clean()
