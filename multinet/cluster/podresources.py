"""The kubelet's device assignments: the PodResources gRPC API, or its checkpoint file.

`KubeletDevices.for_pod(pod)` answers {resource name: device IDs} for one pod. It asks the
kubelet's PodResources service (v1) on its unix socket: `Get` for the one pod where the
kubelet serves it, else `List` (a kubelet older than 1.27, or with the Get feature gate
off, answers UNIMPLEMENTED). When the socket does not exist it reads the device manager's
checkpoint file instead (`Data.PodDeviceEntries`, by pod UID), as Multus does.

The only module that imports grpc (an import contract holds it), and only when a NAD asks
for a resource: the messages are `proto/api_pb2` (the kubelet's api.proto, `make protos`).
Failures are CNIErrors: an unreachable or failing kubelet is TryAgainLater (code 11), a
checkpoint that cannot be read is IOFailure (code 5), one that cannot be parsed
DecodeFailure (code 6).
"""

from __future__ import annotations

import _thread
import json
import os
import stat
from collections.abc import Mapping, Sequence

from multinet.cni.errors import DecodeFailure, IOFailure, TryAgainLater
from multinet.log import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import grpc

    from multinet.cluster.base import Pod

SERVICE = "/v1.PodResourcesLister/"
TIMEOUT = 10.0  # seconds per call: the kubelet answers from memory
MAX_MESSAGE = 16 * 1024 * 1024  # the kubelet's own limit for this API

# {resource name: device IDs} of one pod, every container's together.
Devices = dict[str, list[str]]


def _merge(out: Devices, resource: str, ids: Sequence[str]) -> None:
    known = out.setdefault(resource, [])
    known.extend(i for i in ids if i not in known)


def _from_pod_resources(pod_resources: Any) -> Devices:
    out: Devices = {}
    for container in pod_resources.containers:
        for dev in container.devices:
            _merge(out, dev.resource_name, list(dev.device_ids))
    return out


class PodResourcesClient:
    """The PodResources service on a unix socket; one channel for the client's lifetime
    (the daemon keeps one; thin mode makes one per ADD that needs it)."""

    def __init__(self, socket_path: str, timeout: float = TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._channel: grpc.Channel | None = None
        self._get_served = True  # until the kubelet answers UNIMPLEMENTED
        self._lock = _thread.allocate_lock()  # the daemon's request threads share one client

    def _call(self, method: str, request: Any, response_type: Any) -> Any:
        import grpc

        with self._lock:
            if self._channel is None:
                self._channel = grpc.insecure_channel(
                    f"unix://{self.socket_path}",
                    options=[("grpc.max_receive_message_length", MAX_MESSAGE)],
                )
            channel = self._channel
        stub = channel.unary_unary(
            SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return stub(request, timeout=self.timeout)

    def devices(self, pod: Pod) -> Devices:
        import grpc

        from multinet.cluster.proto import api_pb2

        try:
            if self._get_served:
                try:
                    req = api_pb2.GetPodResourcesRequest(
                        pod_name=pod.name, pod_namespace=pod.namespace
                    )
                    got = self._call("Get", req, api_pb2.GetPodResourcesResponse)
                    return _from_pod_resources(got.pod_resources)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    log.debug("the kubelet does not serve Get: using List")
                    self._get_served = False
            listed = self._call(
                "List", api_pb2.ListPodResourcesRequest(), api_pb2.ListPodResourcesResponse
            )
        except grpc.RpcError as e:
            raise TryAgainLater(
                f"the kubelet's PodResources API on {self.socket_path} failed: {e.code().name}",
                str(e.details() or ""),
            ) from None
        for pr in listed.pod_resources:
            if pr.namespace == pod.namespace and pr.name == pod.name:
                return _from_pod_resources(pr)
        return {}

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None


def read_checkpoint(path: str, pod_uid: str) -> Devices:
    """The device manager's checkpoint (JSON): `Data.PodDeviceEntries[]` of
    {PodUID, ContainerName, ResourceName, DeviceIDs}; DeviceIDs is a list (older
    kubelets) or {NUMA node: list} (1.20+)."""
    try:
        with open(path, "rb") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise TryAgainLater(
            f"neither the kubelet's PodResources socket nor its checkpoint {path} exists"
        ) from None
    except OSError as e:
        raise IOFailure(f"the kubelet checkpoint {path} is unreadable", str(e)) from None
    except ValueError as e:
        raise DecodeFailure(f"the kubelet checkpoint {path} is not JSON", str(e)) from None
    try:
        entries = raw["Data"]["PodDeviceEntries"] or []
        out: Devices = {}
        for item in entries:
            if item["PodUID"] != pod_uid:
                continue
            ids = item["DeviceIDs"]
            if isinstance(ids, Mapping):
                ids = [i for node in sorted(ids) for i in ids[node]]
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise TypeError(f"DeviceIDs of {item['ResourceName']} is not a list of strings")
            _merge(out, str(item["ResourceName"]), ids)
        return out
    except (KeyError, TypeError, AttributeError) as e:
        raise DecodeFailure(
            f"the kubelet checkpoint {path} is malformed: no Data.PodDeviceEntries "
            "of {PodUID, ResourceName, DeviceIDs}",
            f"{type(e).__name__}: {e}",
        ) from None


class KubeletDevices:
    """What the pod planner asks: the socket when it exists, else the checkpoint."""

    def __init__(
        self, socket_path: str, checkpoint: str, client: PodResourcesClient | None = None
    ) -> None:
        self.socket_path = socket_path
        self.checkpoint = checkpoint
        self.client = client or PodResourcesClient(socket_path)

    def serves(self, socket_path: str, checkpoint: str) -> bool:
        return (socket_path, checkpoint) == (self.socket_path, self.checkpoint)

    def for_pod(self, pod: Pod) -> Devices:
        try:
            is_socket = stat.S_ISSOCK(os.stat(self.socket_path).st_mode)
        except OSError:
            is_socket = False
        if is_socket:
            return self.client.devices(pod)
        log.info("no PodResources socket at %s: reading %s", self.socket_path, self.checkpoint)
        return read_checkpoint(self.checkpoint, pod.uid)

    def close(self) -> None:
        self.client.close()
