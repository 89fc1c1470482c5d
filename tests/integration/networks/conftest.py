"""Fixtures for the Kubernetes scenarios: every test runs once per cluster source.

``source`` is parametrized over the two places pods and NADs come from:

- ``manifests``: a directory of YAML the test writes (netconf key ``manifests``);
  network-status and events are read back from multinet's local records.
- ``kubeapi``: the Kubernetes API test server of ``tests/support`` (netconf key
  ``kubeconfig``); network-status is the pod's annotation on the server, events
  are the Event objects posted to it.

A test that only makes sense for one source narrows it with
``@pytest.mark.parametrize("source", ["kubeapi"], indirect=True)``.

Fixtures:

``source`` -> Source
    ``add_pod``, ``delete_pod``, ``add_nad`` (config as a dict, a raw string, or
    None for an empty spec), ``delete_nad``, ``netconf_keys()``,
    ``network_status(ns, name)`` (None when nothing was written), ``events()``
    (normalized ``Event`` tuples), ``go_down()``/``come_up()`` (kubeapi: the
    server refuses connections; manifests: the directory disappears) and
    ``fail_status_write()`` (the next network-status write fails; returns the
    CNI error code multinet should answer with).
``k8s`` -> K8s
    A cluster network already defined (NAD ``cluster`` in ``kube-system``, a
    bridge + host-local conflist named ``cluster-<token>`` on its own bridge)
    and helpers: ``pod(...)`` adds a pod and returns a ``PodRef``,
    ``netconf(**keys)``, ``add(pod, netns)``/``delete(pod, netns)`` run the
    real ``multinet``, ``bridge_nad`` adds a secondary NAD, ``macvlan_config`` builds one.
``recorder`` -> Callable[[str], Recorded]
    ``recorder("tuning")`` writes a plugin ``rec-tuning`` into binDir that logs
    its stdin and CNI_* environment (tests/support/recorder.py), then runs the real
    ``/usr/lib/cni/tuning``;
    ``Recorded.calls(command)`` returns what each invocation saw.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import yaml

from multinet.cluster.records import StatusRecords
from tests.support.kubeapi import KubeAPIServer
from tests.support.recorder import Call, Recorder

if TYPE_CHECKING:
    from tests.integration.conftest import CniOutcome, CniRunner, Confs, State

STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"
REFERENCE_PLUGINS = Path("/usr/lib/cni")
SOURCES = ("manifests", "kubeapi")

# CNI error codes multinet answers with.
UNKNOWN_CONTAINER = 3
IO_FAILURE = 5
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
CLUSTER_ERROR = 101


class Event(NamedTuple):
    namespace: str
    pod: str
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def cni_args(self, uid: str | None = None) -> str:
        return (
            f"IgnoreUnknown=1;K8S_POD_NAMESPACE={self.namespace};K8S_POD_NAME={self.name};"
            f"K8S_POD_UID={self.uid if uid is None else uid}"
        )


def pod_manifest(namespace: str, name: str, uid: str, annotations: Mapping[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "annotations": dict(annotations),
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}],
        },
    }


def nad_manifest(
    namespace: str,
    name: str,
    config: Mapping[str, Any] | str | None,
    annotations: Mapping[str, str] | None = None,
) -> dict:
    spec: dict[str, Any] = {}
    if config is not None:
        spec["config"] = config if isinstance(config, str) else json.dumps(config)
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta,
        "spec": spec,
    }


# -- the two sources -------------------------------------------------------------


class Source:
    kind = ""

    def add_pod(self, namespace: str, name: str, uid: str, annotations: Mapping[str, str]) -> None:
        raise NotImplementedError

    def delete_pod(self, namespace: str, name: str) -> None:
        raise NotImplementedError

    def add_nad(
        self,
        namespace: str,
        name: str,
        config: Mapping[str, Any] | str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        raise NotImplementedError

    def delete_nad(self, namespace: str, name: str) -> None:
        raise NotImplementedError

    def netconf_keys(self) -> dict[str, Any]:
        raise NotImplementedError

    def network_status(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        raise NotImplementedError

    def events(self) -> list[Event]:
        raise NotImplementedError

    def go_down(self) -> None:
        raise NotImplementedError

    def come_up(self) -> None:
        raise NotImplementedError

    def fail_status_write(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ManifestSource(Source):
    """One YAML file per object in a directory the test owns."""

    kind = "manifests"

    def __init__(self, root: Path, cni_dir: Path) -> None:
        self.dir = root / "manifests"
        self.dir.mkdir()
        self.cni_dir = cni_dir
        self.records = StatusRecords(str(cni_dir))

    def _file(self, kind: str, namespace: str, name: str) -> Path:
        return self.dir / f"{kind}-{namespace}-{name}.yaml"

    def add_pod(self, namespace: str, name: str, uid: str, annotations: Mapping[str, str]) -> None:
        doc = pod_manifest(namespace, name, uid, annotations)
        self._file("pod", namespace, name).write_text(yaml.safe_dump(doc, sort_keys=False))

    def delete_pod(self, namespace: str, name: str) -> None:
        self._file("pod", namespace, name).unlink()

    def add_nad(
        self,
        namespace: str,
        name: str,
        config: Mapping[str, Any] | str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        doc = nad_manifest(namespace, name, config, annotations)
        self._file("nad", namespace, name).write_text(yaml.safe_dump(doc, sort_keys=False))

    def delete_nad(self, namespace: str, name: str) -> None:
        self._file("nad", namespace, name).unlink()

    def netconf_keys(self) -> dict[str, Any]:
        return {"manifests": str(self.dir)}

    def network_status(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        return self.records.read_status(namespace, name)

    def events(self) -> list[Event]:
        return [
            Event(e["namespace"], e["pod"], e["type"], e["reason"], e["message"])
            for e in self.records.events()
        ]

    def go_down(self) -> None:
        self.dir.rename(self.dir.with_name("manifests.down"))

    def come_up(self) -> None:
        self.dir.with_name("manifests.down").rename(self.dir)

    def fail_status_write(self) -> int:
        # A file where the status directory goes: the write fails with an I/O error.
        status = self.cni_dir / "status"
        shutil.rmtree(status, ignore_errors=True)
        status.write_text("not a directory\n")
        return IO_FAILURE


class KubeSource(Source):
    """The Kubernetes API test server, reached through a kubeconfig."""

    kind = "kubeapi"

    def __init__(self, root: Path) -> None:
        self.server = KubeAPIServer(token=uuid.uuid4().hex)
        self.server.start()
        self.kubeconfig = self.server.write_kubeconfig(str(root / "kubeconfig"))

    def add_pod(self, namespace: str, name: str, uid: str, annotations: Mapping[str, str]) -> None:
        self.server.add_pod(pod_manifest(namespace, name, uid, annotations))

    def delete_pod(self, namespace: str, name: str) -> None:
        self.server.delete_pod(namespace, name)

    def add_nad(
        self,
        namespace: str,
        name: str,
        config: Mapping[str, Any] | str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.server.add_nad(nad_manifest(namespace, name, config, annotations))

    def delete_nad(self, namespace: str, name: str) -> None:
        self.server.delete_nad(namespace, name)

    def netconf_keys(self) -> dict[str, Any]:
        return {"kubeconfig": self.kubeconfig}

    def network_status(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        pod = self.server.get_pod(namespace, name)
        assert pod is not None, f"pod {namespace}/{name} is not on the API server"
        value = (pod["metadata"].get("annotations") or {}).get(STATUS_ANNOTATION)
        if value is None:
            return None
        status: list[dict[str, Any]] = json.loads(value)
        return status

    def events(self) -> list[Event]:
        out = []
        for e in self._settled_events():
            obj = e.get("involvedObject") or e.get("regarding") or {}
            out.append(
                Event(
                    obj.get("namespace", ""),
                    obj.get("name", ""),
                    e.get("type", ""),
                    e.get("reason", ""),
                    e.get("message") or e.get("note", ""),
                )
            )
        return out

    def _settled_events(self) -> list[Any]:
        """The server's events once no more arrive: thin mode posts them from a detached
        process after answering (thin/main.py), so they may trail the call a little."""
        seen, since, deadline = self.server.events(), time.monotonic(), time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.server.events()
            if len(now) != len(seen):
                seen, since = now, time.monotonic()
            elif time.monotonic() - since >= 0.4:
                break
        return seen

    def go_down(self) -> None:
        self.server.set_down(True)

    def come_up(self) -> None:
        self.server.set_down(False)

    def fail_status_write(self) -> int:
        # The pod changed under multinet: a conflict is permanent (no retry).
        self.server.fail_next(1, 409, path_contains="/status", method="PATCH")
        return CLUSTER_ERROR

    def close(self) -> None:
        self.server.stop()


@pytest.fixture(params=SOURCES)
def source(request: pytest.FixtureRequest, state: State) -> Iterator[Source]:
    src: Source
    if request.param == "manifests":
        src = ManifestSource(state.root, state.cni_dir)
    else:
        src = KubeSource(state.root)
    try:
        yield src
    finally:
        src.close()


@pytest.fixture
def kubeapi(source: Source) -> KubeAPIServer:
    """The API test server of a kubeapi-only test."""
    assert isinstance(source, KubeSource), "narrow the test to the kubeapi source"
    return source.server


# -- the recorder plugin -----------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One reference plugin wrapped by a recording fake (tests.support.recorder)."""

    type: str  # the wrapper's `type` in configs
    recorder: Recorder

    def calls(self, command: str | None = None) -> list[Call]:
        return self.recorder.calls(self.type, command)

    def only_add(self) -> Call:
        adds = self.calls("ADD")
        assert len(adds) == 1, f"{self.type}: expected one ADD, saw {len(adds)}"
        return adds[0]


@pytest.fixture
def recorder(state: State) -> Callable[[str], Recorded]:
    def make(real: str) -> Recorded:
        assert (REFERENCE_PLUGINS / real).is_file(), f"no reference plugin {real}"
        rec = Recorder(state.bin_dir, state.root / f"calls-{real}.jsonl")
        return Recorded(rec.plugin(f"rec-{real}", wraps=REFERENCE_PLUGINS / real), rec)

    return make


# -- the scenario world ------------------------------------------------------------


def host(subnet: ipaddress.IPv4Network, n: int) -> str:
    return str(subnet.network_address + n)


class K8s:
    """A cluster (one source) with its cluster network, and helpers to run pods on it."""

    CLUSTER_NAD = "cluster"
    SYSTEM_NAMESPACE = "kube-system"

    def __init__(
        self,
        source: Source,
        state: State,
        confs: Confs,
        cni: CniRunner,
        bridge_factory: Callable[..., str],
        token: str,
    ) -> None:
        self.source = source
        self.state = state
        self.confs = confs
        self.cni = cni
        self.bridge_factory = bridge_factory
        self.token = token
        self.conf_dir = state.root / "netd"
        self.conf_dir.mkdir()
        self._containers = 0
        self.cluster_bridge = bridge_factory()
        self.cluster_subnet = confs.subnet()
        self.cluster_config_name = f"cluster-{token}"
        source.add_nad(
            self.SYSTEM_NAMESPACE,
            self.CLUSTER_NAD,
            confs.bridge_net(self.cluster_config_name, self.cluster_bridge, self.cluster_subnet),
        )

    @property
    def cluster_gateway(self) -> str:
        return host(self.cluster_subnet, 1)

    @property
    def cluster_status_name(self) -> str:
        """The cluster network's name in network-status: a NAD's is "namespace/name"."""
        return f"{self.SYSTEM_NAMESPACE}/{self.CLUSTER_NAD}"

    def netconf(self, **keys: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "cniVersion": "1.0.0",
            "name": "multinet-k8s",
            "type": "multinet",
            "clusterNetwork": self.CLUSTER_NAD,
            "confDir": str(self.conf_dir),
            "cniDir": str(self.state.cni_dir),
            "binDir": str(self.state.bin_dir),
            **self.source.netconf_keys(),
        }
        conf.update(keys)
        return conf

    def pod(
        self,
        networks: str | Sequence[Mapping[str, Any]] | None = None,
        *,
        namespace: str = "default",
        name: str = "",
        annotations: Mapping[str, str] | None = None,
    ) -> PodRef:
        """Add a pod; `networks` (a string, or a list dumped as JSON) is its annotation."""
        ann = dict(annotations or {})
        if networks is not None:
            ann[NETWORKS_ANNOTATION] = (
                networks if isinstance(networks, str) else json.dumps(networks)
            )
        pod = PodRef(namespace, name or f"pod-{self.token}", str(uuid.uuid4()))
        self.source.add_pod(pod.namespace, pod.name, pod.uid, ann)
        return pod

    def container_id(self) -> str:
        self._containers += 1
        return f"k8s-{self.token}-{self._containers}"

    def add(
        self,
        pod: PodRef,
        netns: str,
        container_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
        uid: str | None = None,
    ) -> CniOutcome:
        return self.cni(
            "ADD",
            conf or self.netconf(),
            netns=netns,
            container_id=container_id,
            args=pod.cni_args(uid),
        )

    def delete(
        self,
        pod: PodRef,
        netns: str,
        container_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
    ) -> CniOutcome:
        return self.cni(
            "DEL",
            conf or self.netconf(),
            netns=netns,
            container_id=container_id,
            args=pod.cni_args(),
        )

    # -- secondary networks --------------------------------------------------------

    def bridge_nad(
        self,
        name: str,
        *,
        namespace: str = "default",
        plugins: Sequence[Mapping[str, Any]] = (),
        routes: Sequence[Mapping[str, str]] | None = (),
        config_name: str | None = None,
    ) -> ipaddress.IPv4Network:
        """A bridge + host-local NAD on a bridge of its own; its subnet.

        No routes by default; `routes=None` gives a default route via the subnet's .1.
        """
        subnet = self.confs.subnet()
        config = self.confs.bridge_net(
            config_name or name, self.bridge_factory(), subnet, plugins=plugins, routes=routes
        )
        self.source.add_nad(namespace, name, config)
        return subnet

    def macvlan_config(
        self, *, address: str | None = None, ipam: Mapping[str, Any] | None = None, **keys: Any
    ) -> dict[str, Any]:
        """A macvlan config (no name) on the cluster bridge with static IPAM."""
        if ipam is None:
            ipam = {"type": "static", "addresses": [{"address": address}]}
        return {
            "cniVersion": "1.0.0",
            "type": "macvlan",
            "master": self.cluster_bridge,
            "mode": "bridge",
            "ipam": dict(ipam),
            **keys,
        }


@pytest.fixture
def k8s(
    source: Source,
    state: State,
    confs: Confs,
    cni: CniRunner,
    bridge_factory: Callable[..., str],
    token: str,
) -> K8s:
    return K8s(source, state, confs, cni, bridge_factory, token)
