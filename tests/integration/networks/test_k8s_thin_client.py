"""Thin mode's per-call path does not import the kubernetes client (issue 11): an ADD
and a DEL of a pod with a secondary network, with the common kubeconfig (a server,
a CA file, a token), through the real `multinet` under `-X importtime`. A DEL the
journal answers does not even import the light client."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import LeakChecker, NetInfo
    from tests.integration.networks.conftest import K8s

kubeapi_only = pytest.mark.parametrize("source", ["kubeapi"], indirect=True)
IMPORT = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)


def imported(stderr: str) -> set[str]:
    return set(IMPORT.findall(stderr))


@kubeapi_only
def test_add_and_del_import_neither_kubernetes_nor_urllib3(
    k8s: K8s, netns: str, net: NetInfo, leaks: LeakChecker
) -> None:
    k8s.bridge_nad("lab")
    pod = k8s.pod("lab")
    cid = k8s.container_id()
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    for command in ("ADD", "DEL"):
        rc, out, err = k8s.cni(
            command,
            k8s.netconf(),
            netns=netns,
            container_id=cid,
            args=pod.cni_args(),
            extra_env=profile,
        )
        assert rc == 0, out
        modules = imported(err)
        assert "multinet.thin.main" in modules, err[-2000:]  # the profile was taken
        heavy = {m for m in modules if m.split(".")[0] in ("kubernetes", "urllib3")}
        assert not heavy, f"{command} imported {sorted(heavy)[:5]}"
        if command == "DEL":  # answered by the journal: no kubeconfig read, no client
            assert not {"multinet.cluster.rest", "http.client", "ssl"} & modules
        if command == "ADD":
            assert "multinet.cluster.rest" in modules
            assert set(net.links(netns)) == {"eth0", "net1"}
            assert k8s.source.network_status(pod.namespace, pod.name)
    leaks.assert_clean()
