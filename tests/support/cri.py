"""A fake container runtime: the real CRI RuntimeService (k8s.io/cri-api runtime.v1)
`ListPodSandbox` and `PodSandboxStatus` on a unix socket, from a real grpcio server,
answering from the sandboxes the test says exist.

    with FakeRuntime(str(tmp_path / "cri.sock")) as runtime:
        runtime.run("c1", "ns1", "pod-c1")  # a ready sandbox on the pod network
        runtime.run("self", "kube-system", "multinet-x", host_network=True)
        ...  # multinetd with gcRuntimeSocket: runtime.socket_path
        runtime.remove("c1")  # gone without its CNI DEL
        assert runtime.calls.count("ListPodSandbox") >= 1

`fail = grpc.StatusCode.X` answers every call with that status; `delay` seconds are
waited before each answer (a runtime past the client's deadline); `empty_id = True`
lists one more sandbox without an ID (an answer that is not whole).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from multinet.cluster.proto import cri_api_pb2

SERVICE = "runtime.v1.RuntimeService"


@dataclass
class FakeSandbox:
    id: str
    namespace: str
    name: str
    ready: bool = True
    host_network: bool = False


class FakeRuntime:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.calls: list[str] = []
        self.fail: grpc.StatusCode | None = None
        self.delay = 0.0
        self.empty_id = False
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    def run(
        self, sandbox_id: str, namespace: str, name: str, *, host_network: bool = False
    ) -> None:
        with self._lock:
            self.sandboxes[sandbox_id] = FakeSandbox(
                sandbox_id, namespace, name, host_network=host_network
            )

    def stop_sandbox(self, sandbox_id: str) -> None:
        with self._lock:
            self.sandboxes[sandbox_id].ready = False

    def remove(self, sandbox_id: str) -> None:
        with self._lock:
            self.sandboxes.pop(sandbox_id, None)

    def _answer(self, method: str, context: grpc.ServicerContext) -> None:
        self.calls.append(method)
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            context.abort(self.fail, f"{method} failed (the test said so)")

    @staticmethod
    def _metadata(sb: FakeSandbox) -> Any:
        return cri_api_pb2.PodSandboxMetadata(
            name=sb.name, namespace=sb.namespace, uid=f"uid-{sb.id}", attempt=0
        )

    @staticmethod
    def _state(sb: FakeSandbox) -> Any:
        return cri_api_pb2.SANDBOX_READY if sb.ready else cri_api_pb2.SANDBOX_NOTREADY

    def _list(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._answer("ListPodSandbox", context)
        with self._lock:
            items = [
                cri_api_pb2.PodSandbox(
                    id=sb.id,
                    metadata=self._metadata(sb),
                    state=self._state(sb),
                    created_at=time.time_ns(),
                )
                for sb in self.sandboxes.values()
            ]
        if self.empty_id:
            items.append(cri_api_pb2.PodSandbox(state=cri_api_pb2.SANDBOX_READY))
        return cri_api_pb2.ListPodSandboxResponse(items=items)

    def _status(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._answer("PodSandboxStatus", context)
        with self._lock:
            sb = self.sandboxes.get(request.pod_sandbox_id)
        if sb is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"sandbox {request.pod_sandbox_id} not found")
        mode = cri_api_pb2.NODE if sb.host_network else cri_api_pb2.POD
        options = cri_api_pb2.NamespaceOption(network=mode)
        return cri_api_pb2.PodSandboxStatusResponse(
            status=cri_api_pb2.PodSandboxStatus(
                id=sb.id,
                metadata=self._metadata(sb),
                state=self._state(sb),
                created_at=time.time_ns(),
                linux=cri_api_pb2.LinuxPodSandboxStatus(
                    namespaces=cri_api_pb2.Namespace(options=options)
                ),
            )
        )

    def start(self) -> FakeRuntime:
        handlers = {
            "ListPodSandbox": grpc.unary_unary_rpc_method_handler(
                self._list,
                request_deserializer=cri_api_pb2.ListPodSandboxRequest.FromString,
                response_serializer=cri_api_pb2.ListPodSandboxResponse.SerializeToString,
            ),
            "PodSandboxStatus": grpc.unary_unary_rpc_method_handler(
                self._status,
                request_deserializer=cri_api_pb2.PodSandboxStatusRequest.FromString,
                response_serializer=cri_api_pb2.PodSandboxStatusResponse.SerializeToString,
            ),
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_insecure_port(f"unix://{self.socket_path}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> FakeRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
