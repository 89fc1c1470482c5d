"""The container runtime's own list of pod sandboxes: the CRI RuntimeService (runtime.v1).

`RuntimeClient(socket).sandboxes()` answers every pod sandbox the runtime (containerd,
CRI-O) has, as its `ListPodSandbox` tells it, unfiltered: ready and not ready, since a
sandbox that is stopped but not yet removed may still be torn down through multinet.
`host_network(id)` asks `PodSandboxStatus` whether a sandbox uses the node's network
namespace (no CNI call is ever made for it).

The answer is all or nothing: an unreachable runtime, an RPC error, a deadline passed or
an answer that is not whole (a sandbox without an ID) is TryAgainLater (code 11), so that
the GC that asks (daemon.gc) never takes a partial list for the truth. Like the
PodResources client, grpc and the messages (`proto/cri_api_pb2`, `make protos`) are
imported on first use only. multinetd never loads them at all: it runs `main` in a child
process (cluster.runtime.RuntimeProcess), which prints the answer as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from multinet.cluster.runtime import LIST, STATUS, TIMEOUT, RuntimeSandbox
from multinet.cni.errors import CNIError, TryAgainLater

if TYPE_CHECKING:
    import grpc

SERVICE = "/runtime.v1.RuntimeService/"
MAX_MESSAGE = 16 * 1024 * 1024  # the kubelet's own limit for the CRI
CNI_VERSION = "1.0.0"  # of the error object the child prints
USAGE = f"usage: {LIST} SOCKET TIMEOUT | {STATUS} SOCKET TIMEOUT SANDBOX_ID..."


class RuntimeClient:
    """The CRI RuntimeService on a unix socket; one channel for the client's lifetime."""

    def __init__(self, socket_path: str, timeout: float = TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()

    def _call(self, method: str, request: Any, response_type: Any) -> Any:
        """One RPC; grpc.RpcError as grpc raises it."""
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

    def _failed(self, method: str, error: Any) -> TryAgainLater:
        return TryAgainLater(
            f"the container runtime's CRI on {self.socket_path} failed: "
            f"{method}: {error.code().name}",
            str(error.details() or ""),
        )

    def sandboxes(self) -> list[RuntimeSandbox]:
        """Every pod sandbox the runtime has; TryAgainLater unless the answer is whole."""
        import grpc

        from multinet.cluster.proto import cri_api_pb2

        try:
            listed = self._call(
                "ListPodSandbox",
                cri_api_pb2.ListPodSandboxRequest(),
                cri_api_pb2.ListPodSandboxResponse,
            )
        except grpc.RpcError as e:
            raise self._failed("ListPodSandbox", e) from None
        out = []
        for item in listed.items:
            if not item.id:
                raise TryAgainLater(
                    f"the container runtime on {self.socket_path} listed a pod sandbox "
                    "without an ID: its answer is not taken"
                )
            meta = item.metadata
            out.append(
                RuntimeSandbox(
                    id=item.id,
                    namespace=meta.namespace,
                    name=meta.name,
                    uid=meta.uid,
                    ready=item.state == cri_api_pb2.SANDBOX_READY,
                )
            )
        return out

    def host_network(self, sandbox_id: str) -> bool | None:
        """Whether the sandbox uses the node's network namespace; None when the runtime
        no longer has it (removed since it was listed)."""
        import grpc

        from multinet.cluster.proto import cri_api_pb2

        req = cri_api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)
        try:
            got = self._call("PodSandboxStatus", req, cri_api_pb2.PodSandboxStatusResponse)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self._failed("PodSandboxStatus", e) from None
        status = got.status
        if status.id != sandbox_id:
            raise TryAgainLater(
                f"the container runtime on {self.socket_path} answered PodSandboxStatus of "
                f"{sandbox_id} with {status.id or 'no sandbox'}: its answer is not taken"
            )
        # NamespaceMode NODE: the sandbox shares the node's network namespace.
        return bool(status.linux.namespaces.options.network == cri_api_pb2.NODE)

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None


def query(verb: str, socket_path: str, timeout: float, ids: Sequence[str]) -> dict[str, Any]:
    """The child's query (cluster.runtime): `list`, or the `status` of sandboxes; its
    answer as the JSON object RuntimeProcess reads."""
    client = RuntimeClient(socket_path, timeout)
    try:
        if verb == LIST:
            return {"sandboxes": [asdict(s) for s in client.sandboxes()]}
        return {"hostNetwork": {i: client.host_network(i) for i in ids}}
    finally:
        client.close()


def main(argv: Sequence[str]) -> int:
    """The child process: `list SOCKET TIMEOUT` or `status SOCKET TIMEOUT ID...`. Its
    answer on stdout, exit 0; the runtime's failure as a CNI error object on stdout,
    exit 1; a command line not understood, exit 2."""
    try:
        verb, socket_path, timeout, *ids = argv
        seconds = float(timeout)
        if verb not in (LIST, STATUS) or (verb == LIST) == bool(ids) or seconds <= 0:
            raise ValueError(verb)
    except ValueError:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        answer = query(verb, socket_path, seconds, ids)
    except CNIError as e:
        json.dump(e.to_dict(CNI_VERSION), sys.stdout)
        return 1
    json.dump(answer, sys.stdout)
    return 0
