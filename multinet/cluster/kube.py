"""The Kubernetes API server as a Cluster, through the official `kubernetes` client.

Responses are read as raw JSON (`_preload_content=False`): multinet needs a few
fields, not the client's model objects, and skipping model deserialisation is
much faster. Every client, urllib3 or socket exception is turned into a CNIError
here; transient failures are retried a few times, then reported as code 11.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from multinet.cluster.base import NAD, STATUS_ANNOTATION, Pod
from multinet.cluster.objects import ObjectError, nad_from_object, pod_from_object
from multinet.cluster.records import StatusRecords
from multinet.cni.errors import ClusterError, CNIError, TryAgainLater
from multinet.cni.strictjson import JSONError, loads

log = logging.getLogger("multinet")
T = TypeVar("T")

NAD_GROUP, NAD_VERSION, NAD_PLURAL = "k8s.cni.cncf.io", "v1", "network-attachment-definitions"
POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"
NAD_PATH = f"/apis/{NAD_GROUP}/{NAD_VERSION}/namespaces/{{namespace}}/{NAD_PLURAL}/{{name}}"
EVENTS_PATH = "/api/v1/namespaces/{namespace}/events"
TRANSIENT_STATUS = {429, 500, 502, 503, 504}
ATTEMPTS = 3
BACKOFF = 0.2  # seconds, doubled per attempt
TIMEOUT = (3.0, 10.0)  # connect, read: a CNI call must not hang on a dead API server
# Nesting of an API response (a list of objects); each NAD's config still nests at most
# strictjson.MAX_DEPTH levels, checked where it is read (networks.resolve).
RESPONSE_MAX_DEPTH = 512


class _NotFound(Exception):
    pass


def pod_from_json(obj: Any) -> Pod:
    """A Pod the API server sent; ClusterError (code 101) when it is malformed."""
    try:
        return pod_from_object(obj)
    except ObjectError as e:
        raise ClusterError(f"the API server sent a malformed object: {e}") from None


def nad_from_json(obj: Any) -> NAD:
    """A NAD the API server sent; ClusterError (code 101) when it is malformed."""
    try:
        return nad_from_object(obj)
    except ObjectError as e:
        raise ClusterError(f"the API server sent a malformed object: {e}") from None


def response_json(what: str, data: Any) -> dict[str, Any]:
    """An API response body: a JSON object, or ClusterError naming the request."""
    if not isinstance(data, bytes | str):
        raise ClusterError(f"{what}: the API server sent no body")
    try:
        value = loads(data, max_depth=RESPONSE_MAX_DEPTH)
    except JSONError as e:
        raise ClusterError(f"{what}: the API server sent invalid JSON", str(e)) from None
    if not isinstance(value, dict):
        raise ClusterError(f"{what}: the API server sent JSON that is not an object")
    return value


def api_client(kubeconfig: str) -> Any:
    """An ApiClient from a kubeconfig file, or the in-cluster service account."""
    import yaml
    from kubernetes import client, config

    configuration = client.Configuration()
    # No hidden urllib3 retries (it honours Retry-After on 429/503 and retries connects):
    # they multiply `_call`'s bounded attempts (12 requests, ~11 s for one GET on a 429).
    configuration.retries = False
    try:
        if kubeconfig:
            return config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration)
    except (
        config.ConfigException,
        yaml.YAMLError,
        OSError,
        ValueError,
        TypeError,
        AttributeError,
    ) as e:  # the client reads a malformed kubeconfig with no checks of its own
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster configuration"
        raise ClusterError(f"cannot load {where}", str(e)) from None


class KubeCluster:
    def __init__(self, kubeconfig: str, state_dir: str, client: Any = None) -> None:
        self.kubeconfig = kubeconfig
        self._client = client
        self.records = StatusRecords(state_dir)

    @functools.cached_property
    def api_client(self) -> Any:
        # Built on first use: a DEL answered by the journal never needs the API
        # server, and must not fail because the kubeconfig is unreadable.
        return self._client or api_client(self.kubeconfig)

    @functools.cached_property
    def core(self) -> Any:
        from kubernetes import client as k8s

        return k8s.CoreV1Api(self.api_client)

    @functools.cached_property
    def custom(self) -> Any:
        from kubernetes import client as k8s

        return k8s.CustomObjectsApi(self.api_client)

    # -- error mapping -------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        delay = BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn()
            except ApiException as e:
                if e.status == 404:
                    raise _NotFound() from None
                if e.status in TRANSIENT_STATUS and attempt < ATTEMPTS:
                    pass
                elif e.status in TRANSIENT_STATUS:
                    raise TryAgainLater(
                        f"{what}: API server answered {e.status} {e.reason}", _message(e.body)
                    ) from None
                elif e.status == 409:
                    raise ClusterError(f"{what}: conflict", _message(e.body)) from None
                elif e.status in (401, 403):
                    raise ClusterError(
                        f"{what}: API server refused access ({e.status} {e.reason}); "
                        "check the kubeconfig credentials and RBAC",
                        _message(e.body),
                    ) from None
                else:
                    raise ClusterError(
                        f"{what}: API server answered {e.status} {e.reason}", _message(e.body)
                    ) from None
            except (HTTPError, OSError) as e:
                if attempt == ATTEMPTS:
                    raise TryAgainLater(f"{what}: API server unreachable", str(e)) from None
            log.info("%s: transient failure, retry %d/%d", what, attempt, ATTEMPTS - 1)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _json(self, what: str, fn: Callable[[], Any]) -> dict[str, Any] | None:
        try:
            resp = self._call(what, fn)
        except _NotFound:
            return None
        return response_json(what, getattr(resp, "data", None))

    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = "", **params: str
    ) -> Any:
        """One request through the client's low-level API, read to its end (which hands
        the connection back to the pool). The generated CoreV1Api module alone takes
        ~0.7 s to import (kubernetes 37), paid by every thin-mode ADD that used it."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, payload, post = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            path_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api_client.call_api(
            method,
            url,
            header_params=headers,
            body=payload,
            post_params=post,
            _request_timeout=TIMEOUT,
        )
        resp.read()
        if not 200 <= resp.status <= 299:
            ApiException.from_response(
                http_resp=resp, body=resp.data.decode(errors="replace"), data=None
            )
        return resp

    # -- Cluster -------------------------------------------------------------

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        obj = self._json(
            f"get pod {namespace}/{name}",
            lambda: self._request("GET", POD_PATH, namespace=namespace, name=name),
        )
        return pod_from_json(obj) if obj is not None else None

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        obj = self._json(
            f"get NetworkAttachmentDefinition {namespace}/{name}",
            lambda: self._request("GET", NAD_PATH, namespace=namespace, name=name),
        )
        return nad_from_json(obj) if obj is not None else None

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        """One merge patch of pods/status; the UID in it is a precondition."""
        meta: dict[str, Any] = {"annotations": {STATUS_ANNOTATION: json.dumps(status)}}
        if pod.uid:
            meta["uid"] = pod.uid
        what = f"write network-status of pod {pod.key}"
        try:
            self._call(
                what,
                lambda: self._request(
                    "PATCH",
                    POD_PATH + "/status",
                    body={"metadata": meta},
                    content_type="application/merge-patch+json",
                    namespace=pod.namespace,
                    name=pod.name,
                ),
            )
        except _NotFound:
            raise ClusterError(f"{what}: the pod no longer exists") from None
        # The annotation is the record; the local copy (multinetctl offline) is best
        # effort: failing the ADD now would leave the annotation naming removed interfaces.
        try:
            self.records.write_status(pod.namespace, pod.name, status)
        except CNIError as e:
            log.warning("local copy of the network-status of %s not written: %s", pod.key, e)

    def emit_event(self, pod: Pod, reason: str, message: str, warning: bool = False) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod.name}.{uuid.uuid4().hex[:16]}", "namespace": pod.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": pod.namespace,
                "name": pod.name,
                "uid": pod.uid,
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": "multinet"},
            "reportingComponent": "multinet",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._request("POST", EVENTS_PATH, body=body, namespace=pod.namespace)
        except Exception as e:  # events are best effort: never fail a CNI call
            log.info("event %s for pod %s not recorded: %s", reason, pod.key, e)

    def network_status(self, namespace: str, name: str) -> list[dict[str, Any]] | None:
        """The pod's network-status annotation (for multinetctl)."""
        pod = self.get_pod(namespace, name)
        if pod is None or STATUS_ANNOTATION not in pod.annotations:
            return None
        what = f"pod {namespace}/{name} has a malformed network-status"
        try:
            data = loads(pod.annotations[STATUS_ANNOTATION])
        except JSONError as e:
            raise ClusterError(what, str(e)) from None
        if not isinstance(data, list) or not all(isinstance(st, dict) for st in data):
            raise ClusterError(what, "expected a JSON list of objects")
        return data


def _message(body: Any) -> str:
    """The `message` of a Kubernetes Status body, or the body itself."""
    try:
        msg = json.loads(body).get("message")
        return str(msg) if msg else str(body)
    except (ValueError, TypeError, AttributeError):
        return str(body or "")
