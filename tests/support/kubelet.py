"""A fake kubelet: the real PodResources gRPC API (v1) on a unix socket, from a real
grpcio server, answering from what the test assigned.

    with FakeKubelet(str(tmp_path / "kubelet.sock")) as kubelet:
        kubelet.assign("default", "pod-1", "intel.com/sriov", ["0000:03:02.1"])
        ...  # netconf key podResourcesSocket: kubelet.socket_path
        assert kubelet.calls == ["Get"]

``serve_get=False`` answers Get with UNIMPLEMENTED, as a kubelet before 1.27 does.

Faults: ``fail(code, message)`` answers every call with that gRPC status (None: serve
again), ``hang(seconds)`` makes every call wait that long first (past a client's
deadline), ``crash()`` stops the server and leaves its socket file behind with nothing
listening on it, as a kubelet that died leaves it (connecting is refused).
"""

from __future__ import annotations

import os
import socket
import threading
from concurrent import futures
from typing import Any

import grpc

from multinet.cluster.proto import api_pb2

SERVICE = "v1.PodResourcesLister"


class FakeKubelet:
    def __init__(self, socket_path: str, *, serve_get: bool = True) -> None:
        self.socket_path = socket_path
        self.serve_get = serve_get
        self.calls: list[str] = []
        # (namespace, name) -> container name -> [(resource, ids)]
        self.pods: dict[tuple[str, str], dict[str, list[tuple[str, list[str]]]]] = {}
        self._server: grpc.Server | None = None
        self.failure: tuple[grpc.StatusCode, str] | None = None
        self.delay = 0.0
        self._released = threading.Event()
        self._stale: socket.socket | None = None

    def fail(self, code: grpc.StatusCode | None, message: str = "") -> None:
        self.failure = None if code is None else (code, message or f"injected {code.name}")

    def hang(self, seconds: float) -> None:
        self.delay = seconds
        self._released.clear()

    def crash(self) -> None:
        """The server gone, its socket file left: connecting to it is refused."""
        self.stop()
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.socket_path)  # bound, never listening: ECONNREFUSED
        self._stale = stale

    def _misbehave(self, context: grpc.ServicerContext) -> None:
        if self.delay:
            self._released.wait(self.delay)
        if self.failure is not None:
            context.abort(*self.failure)

    def assign(
        self, namespace: str, name: str, resource: str, ids: list[str], container: str = "app"
    ) -> None:
        containers = self.pods.setdefault((namespace, name), {})
        containers.setdefault(container, []).append((resource, list(ids)))

    def _pod(self, key: tuple[str, str]) -> api_pb2.PodResources:
        containers = [
            api_pb2.ContainerResources(
                name=cname,
                devices=[
                    api_pb2.ContainerDevices(resource_name=r, device_ids=ids) for r, ids in devs
                ],
            )
            for cname, devs in self.pods[key].items()
        ]
        return api_pb2.PodResources(namespace=key[0], name=key[1], containers=containers)

    def _list(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.append("List")
        self._misbehave(context)
        return api_pb2.ListPodResourcesResponse(pod_resources=[self._pod(k) for k in self.pods])

    def _get(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.append("Get")
        self._misbehave(context)
        if not self.serve_get:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "method Get not implemented")
        key = (request.pod_namespace, request.pod_name)
        if key not in self.pods:
            context.abort(grpc.StatusCode.NOT_FOUND, f"pod {key[0]}/{key[1]} not found")
        return api_pb2.GetPodResourcesResponse(pod_resources=self._pod(key))

    def start(self) -> FakeKubelet:
        handlers = {
            "List": grpc.unary_unary_rpc_method_handler(
                self._list,
                request_deserializer=api_pb2.ListPodResourcesRequest.FromString,
                response_serializer=api_pb2.ListPodResourcesResponse.SerializeToString,
            ),
            "Get": grpc.unary_unary_rpc_method_handler(
                self._get,
                request_deserializer=api_pb2.GetPodResourcesRequest.FromString,
                response_serializer=api_pb2.GetPodResourcesResponse.SerializeToString,
            ),
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_insecure_port(f"unix://{self.socket_path}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        self._released.set()
        if self._stale is not None:
            self._stale.close()
            self._stale = None
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> FakeKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
