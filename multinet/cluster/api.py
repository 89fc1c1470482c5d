"""The Kubernetes API as a Cluster, whatever carries the requests.

Both API clients share this: `kube.KubeCluster` (the official `kubernetes` client,
for the kubeconfig forms only it understands) and `rest.RestCluster` (the standard
library: thin mode's per-call path, and multinetd's through `shared`). A subclass
supplies `_request` (one HTTP request, its body read to the end) and the
exceptions its transport raises; everything else is written once here: the paths,
the objects read back, the error mapping, the bounded retries, the status patch
and the event body.

Error mapping: 404 → None (a missing object); 429 and 5xx → retried, then
TryAgainLater (code 11); transport failures (refused, reset, timeout, TLS) →
retried, then TryAgainLater; 409 → Conflict (a ClusterError, code 101, that a
caller doing optimistic concurrency catches to read again); 401/403, every other status and a server
certificate the CA does not verify → ClusterError (code 101) at once. A 401 first
reads the credentials again (`_renew`): sent once more when they changed (a token
rotated since), the request's 401 stands when they did not.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from multinet.cluster.base import NAD, STATUS_ANNOTATION, Pod
from multinet.cluster.objects import ObjectError, nad_from_object, pod_from_object
from multinet.cluster.records import StatusRecords
from multinet.cni.errors import ClusterError, CNIError, CredentialsError, TryAgainLater
from multinet.cni.strictjson import JSONError, loads
from multinet.log import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")
    Obj = TypeVar("Obj", Pod, NAD)


NAD_GROUP, NAD_VERSION, NAD_PLURAL = "k8s.cni.cncf.io", "v1", "network-attachment-definitions"
POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"
NAD_PATH = f"/apis/{NAD_GROUP}/{NAD_VERSION}/namespaces/{{namespace}}/{NAD_PLURAL}/{{name}}"
EVENTS_PATH = "/api/v1/namespaces/{namespace}/events"
NODE_EVENTS_NAMESPACE = "default"
TRANSIENT_STATUS = {429, 500, 502, 503, 504}
ATTEMPTS = 3
BACKOFF = 0.2  # seconds, doubled per attempt
TIMEOUT = (3.0, 10.0)  # connect, read: a CNI call must not hang on a dead API server
# Nesting of an API response (a list of objects); each NAD's config still nests at most
# strictjson.MAX_DEPTH levels, checked where it is read (networks.resolve).
RESPONSE_MAX_DEPTH = 512


class HTTPFailure(Exception):
    """The API server answered with a status outside 2xx."""

    def __init__(self, status: int, reason: str, body: bytes | str) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason = status, reason
        self.body = body.decode(errors="replace") if isinstance(body, bytes) else body


class _NotFound(Exception):
    pass


class Conflict(ClusterError):
    """409: the object changed since it was read (a stale resourceVersion), or one of that
    name exists already. Whoever wrote with a resourceVersion reads again and retries."""


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


# What urllib.parse.quote never quotes: Kubernetes names are made of it (urllib.parse costs
# ~11 million instructions to import, on every thin-mode ADD).
UNQUOTED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(value: str) -> str:
    """`value` URL-quoted as a path segment (urllib.parse.quote with safe="")."""
    if UNQUOTED.issuperset(value):
        return value
    from urllib.parse import quote

    return quote(value, safe="")


def path(template: str, **params: str) -> str:
    """A resource path with its parameters URL-quoted."""
    return template.format(**{k: quote(v) for k, v in params.items()})


def event_body(pod: Pod, reason: str, message: str, warning: bool) -> dict[str, Any]:
    """A core/v1 Event on the pod, as kubelet-era components post them."""
    involved = {"kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid}
    return _event(pod.namespace, involved, reason, message, warning)


def node_event_body(node: str, reason: str, message: str, warning: bool) -> dict[str, Any]:
    """A core/v1 Event on the node, in `default` as the kubelet posts them (its uid is the
    node's name, as the kubelet's own node events have it)."""
    involved = {"kind": "Node", "name": node, "uid": node}
    return _event(NODE_EVENTS_NAMESPACE, involved, reason, message, warning)


def _event(
    namespace: str, involved: dict[str, str], reason: str, message: str, warning: bool
) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # datetime: ~1 ms to import
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{involved['name']}.{os.urandom(8).hex()}", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", **involved},
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": "multinet"},
        "reportingComponent": "multinet",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def _message(body: Any) -> str:
    """The `message` of a Kubernetes Status body, or the body itself."""
    try:
        msg = json.loads(body).get("message")
        return str(msg) if msg else str(body)
    except (ValueError, TypeError, AttributeError):
        return str(body or "")


def _untrusted(e: BaseException) -> str | None:
    """The verification failure inside a transport error (urllib3 and the kubernetes
    client wrap it up to three times), if any: permanent, not retried."""
    import ssl  # loaded already when TLS failed

    for err in _chain(e):
        if isinstance(err, ssl.SSLCertVerificationError):
            return str(err.verify_message or err)
    return None


def _chain(e: BaseException) -> list[BaseException]:
    """`e` and the errors inside it (urllib3 and the kubernetes client wrap a socket's
    error up to three times), breadth first."""
    pending: list[BaseException] = [e]
    seen: list[BaseException] = []
    while pending and len(seen) < 10:
        err = pending.pop(0)
        seen.append(err)
        for inner in (getattr(err, "reason", None), err.__cause__, err.__context__):
            if isinstance(inner, BaseException):
                pending.append(inner)
    return seen


_TRANSPORT = (
    (TimeoutError, "timed out"),
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (ConnectionAbortedError, "connection aborted"),
    (BrokenPipeError, "connection closed"),
)


def _unreachable(e: BaseException) -> str:
    """What a transport failure was, in a few words."""
    for err in _chain(e):
        for kind, words in _TRANSPORT:
            if isinstance(err, kind):
                return words
    return str(e) or type(e).__name__


def _permanent(what: str, e: HTTPFailure) -> CNIError:
    if e.status in (401, 403):
        refused = CredentialsError if e.status == 401 else ClusterError
        return refused(
            f"{what}: API server refused access ({e.status} {e.reason}); "
            "check the kubeconfig credentials and RBAC",
            _message(e.body),
        )
    return ClusterError(f"{what}: API server answered {e.status} {e.reason}", _message(e.body))


def _the_one(obj: Obj, namespace: str, name: str) -> Obj:
    """`obj` (a Pod or NAD read back), when it is the object asked for: another one in a
    200 (a caching proxy's mix-up, a Status object) is no answer to the request."""
    got = obj.key
    if got != f"{namespace}/{name}":
        raise ClusterError(f"the API server answered with another object ({got})")
    return obj


class ApiCluster:
    """A Cluster over the Kubernetes API; subclasses carry the requests."""

    def __init__(self, kubeconfig: str, state_dir: str) -> None:
        self.kubeconfig = kubeconfig
        self.records = StatusRecords(state_dir)

    # -- what a transport supplies ---------------------------------------------

    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = ""
    ) -> bytes:
        """One request, the response read to its end; its body when the status is 2xx,
        else HTTPFailure. Transport failures raise one of `_transport_errors()`."""
        raise NotImplementedError

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        return (OSError,)

    def close(self) -> None:
        """Release the connection (if any); the cluster may still be used afterwards."""

    def _version(self) -> object:
        """What tells the credentials as read so far: it changes each time they are read
        again."""
        return None

    def _renew(self, version: object) -> bool:
        """After a 401 to a request sent with the credentials at `version` (a token rotated
        since): read them again, whatever their files say, unless another request did
        since. True when they changed: the request is worth sending once more."""
        return False

    # -- error mapping -----------------------------------------------------------

    def _authorized(self, fn: Callable[[], T]) -> T:
        """`fn`, and once more after a 401 if the credentials read again changed."""
        version = self._version()
        try:
            return fn()
        except HTTPFailure as e:
            if e.status != 401 or not self._renew(version):
                raise
        log.info("credentials changed after a 401: sending the request again")
        return fn()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        transport = self._transport_errors()
        delay = BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._authorized(fn)
            except HTTPFailure as e:
                if e.status == 404:
                    raise _NotFound() from None
                if e.status == 409:
                    raise Conflict(
                        f"{what}: API server answered {e.status} {e.reason}", _message(e.body)
                    ) from None
                if e.status not in TRANSIENT_STATUS:
                    raise _permanent(what, e) from None
                if attempt == ATTEMPTS:
                    raise TryAgainLater(
                        f"{what}: API server answered {e.status} {e.reason}", _message(e.body)
                    ) from None
            except transport as e:
                if (bad := _untrusted(e)) is not None:
                    raise ClusterError(
                        f"{what}: the API server's certificate is not trusted; check the "
                        "certificate-authority of the kubeconfig (or the service account's ca.crt)",
                        bad,
                    ) from None
                if attempt == ATTEMPTS:
                    raise TryAgainLater(
                        f"{what}: API server unreachable ({_unreachable(e)}, {ATTEMPTS} attempts)",
                        str(e),
                    ) from None
            log.info("%s: transient failure, retry %d/%d", what, attempt, ATTEMPTS - 1)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _get(self, what: str, resource: str) -> dict[str, Any] | None:
        try:
            data = self._call(what, lambda: self._request("GET", resource))
        except _NotFound:
            return None
        return response_json(what, data)

    # -- any object (custom resources: multinet-ipam's pools) ------------------------

    def read_object(self, what: str, resource: str) -> dict[str, Any] | None:
        """GET `resource` (an API path): the object, or None when there is none."""
        return self._get(what, resource)

    def write_object(self, what: str, method: str, resource: str, body: Any) -> dict[str, Any]:
        """POST (create) or PUT (replace) `body` at `resource`: the object as stored.
        Conflict on a 409; ClusterError on a 404 (a PUT's object, or the namespace, gone)."""
        try:
            data = self._call(what, lambda: self._request(method, resource, body=body))
        except _NotFound:
            raise ClusterError(f"{what}: not found (the object or its namespace)") from None
        return response_json(what, data)

    # -- Cluster -------------------------------------------------------------------

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        what = f"get pod {namespace}/{name}"
        obj = self._get(what, path(POD_PATH, namespace=namespace, name=name))
        if obj is None:
            return None
        try:
            return _the_one(pod_from_json(obj), namespace, name)
        except ClusterError as e:
            raise e.with_context(what) from None

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        what = f"get NetworkAttachmentDefinition {namespace}/{name}"
        obj = self._get(what, path(NAD_PATH, namespace=namespace, name=name))
        if obj is None:
            return None
        try:
            return _the_one(nad_from_json(obj), namespace, name)
        except ClusterError as e:
            raise e.with_context(what) from None

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        """One merge patch of pods/status; the UID in it is a precondition."""
        meta: dict[str, Any] = {"annotations": {STATUS_ANNOTATION: json.dumps(status)}}
        if pod.uid:
            meta["uid"] = pod.uid
        what = f"write network-status of pod {pod.key}"
        resource = path(POD_PATH + "/status", namespace=pod.namespace, name=pod.name)
        try:
            self._call(
                what,
                lambda: self._request(
                    "PATCH",
                    resource,
                    body={"metadata": meta},
                    content_type="application/merge-patch+json",
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
        body = event_body(pod, reason, message, warning)
        try:
            resource = path(EVENTS_PATH, namespace=pod.namespace)
            self._authorized(lambda: self._request("POST", resource, body=body))
        except Exception as e:  # events are best effort: never fail a CNI call
            log.info("event %s for pod %s not recorded: %s", reason, pod.key, e)

    def emit_node_event(self, node: str, reason: str, message: str, warning: bool = False) -> None:
        """Best effort, as emit_event: an event on the node (multinetd's own, not a pod's)."""
        body = node_event_body(node, reason, message, warning)
        try:
            self._request("POST", path(EVENTS_PATH, namespace=NODE_EVENTS_NAMESPACE), body=body)
        except Exception as e:  # events are best effort
            log.info("event %s for node %s not recorded: %s", reason, node, e)

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
