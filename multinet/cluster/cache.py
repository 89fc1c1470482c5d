"""Watch-backed caches of NADs (cluster-wide) and of this node's pods, for multinetd.

Each kind is listed once, then watched from the list's resourceVersion; a `410 Gone`
(as an HTTP status or an ERROR event) means our resourceVersion is too old: list
again. A list comes in pages of `LIST_PAGE` (`limit` and `continue`), each read from
etcd (no `resourceVersion=0`, which the API server answers from its watch cache whole,
ignoring `limit`): the daemon never holds more than a page's body, and a relist after a
410 is never older than the watch it replaces. A watch event too long to be an object
(`shared.MAX_EVENT`) ends the watch with a warning and a relist. The requests go
through `shared.WatchedApi` (the standard-library client, or the official one for the
kubeconfig forms only it implements). Only what multinet reads of
an object is kept (`base.Pod`, `base.NAD`), never the object itself. A cache miss falls
back to one GET through the API (a pod can reach the kubelet before its watch event
reaches us), so a warm cache answers an ADD with no request but the status write.
Events are sent by a background thread: never on the path of a CNI request.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from multinet.cluster.api import (
    NAD_GROUP,
    NAD_PLURAL,
    NAD_VERSION,
    HTTPFailure,
    nad_from_json,
    pod_from_json,
    response_json,
)
from multinet.cluster.base import NAD, Pod
from multinet.cluster.http11 import LineTooLong
from multinet.cluster.shared import WatchedApi
from multinet.cni.errors import ClusterError, CNIError

log = logging.getLogger("multinet")
WATCH_TIMEOUT = 300  # seconds the server keeps one watch open
RETRY_DELAY = 1.0
LIST_PAGE = 500  # objects per page of a list (client-go's reflector pages by 500 too)
NADS_PATH = f"/apis/{NAD_GROUP}/{NAD_VERSION}/{NAD_PLURAL}"
PODS_PATH = "/api/v1/pods"


class Gone(Exception):
    """The resourceVersion we watch from is too old: relist."""


class Informer:
    """List + watch one kind into a dict keyed by (namespace, name).

    `convert` turns an API object into the cached value (with `namespace` and `name`) and
    raises ClusterError for a malformed one: that object is skipped with a warning, so
    that it neither stops the watch nor replaces a good copy in the cache."""

    def __init__(
        self,
        kind: str,
        api: WatchedApi,
        path: str,
        convert: Callable[[dict[str, Any]], Any],
        stop: threading.Event,
    ) -> None:
        """`path`: the collection, with its query if any (a field selector)."""
        self.kind = kind
        self.api = api
        self.path = path
        self.join = "&" if "?" in path else "?"
        self.convert = convert
        self.stop = stop
        self.items: dict[tuple[str, str], Any] = {}
        self.synced = threading.Event()
        self.problem = ""  # why the last list or watch failed ('' once a list succeeded)
        self.relists = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"informer-{kind}", daemon=True)
        # Told, on the informer's thread (so: quick), of each change and of each (re)list.
        self.on_change: Callable[[Any, Any], None] | None = None  # (old, new); None: absent
        self.on_list: Callable[[], None] | None = None

    def start(self) -> None:
        self.thread.start()

    def _converted(self, obj: Any, where: str) -> Any:
        """The cached value of `obj`, or None (logged) when it is malformed."""
        try:
            return self.convert(obj)
        except ClusterError as e:
            log.warning("cache: %s %s skipped: %s", self.kind, where, e)
            return None

    def _list(self) -> str:
        items: dict[tuple[str, str], Any] = {}
        token: Any = ""
        count = 0
        while True:  # page by page; an expired continue token is a 410: relisted
            query = f"limit={LIST_PAGE}"
            if token:
                query += f"&continue={quote(token, safe='')}"
            data = response_json(
                f"list {self.kind}", self.api.list_json(self.path + self.join + query)
            )
            listed = data.get("items")
            if not isinstance(listed, list):
                raise ClusterError(f"list {self.kind}: the API server sent no list of items")
            for o in listed:
                value = self._converted(o, f"item {count} of the list")
                count += 1
                if value is not None:
                    items[(value.namespace, value.name)] = value
            meta = data.get("metadata")
            token = meta.get("continue") if isinstance(meta, dict) else None
            if not isinstance(token, str) or not token:
                break
        with self.lock:
            self.items = items
        self.relists += 1
        self.problem = ""
        self.synced.set()
        log.info("cache: listed %d %s", len(items), self.kind)
        if self.on_list is not None:
            self.on_list()  # what changed while nobody watched
        return _resource_version(data, "")

    def _watch(self, rv: str) -> str:
        query = (
            f"watch=true&resourceVersion={quote(rv, safe='')}"
            f"&timeoutSeconds={WATCH_TIMEOUT}&allowWatchBookmarks=true"
        )
        lines = self.api.watch_lines(self.path + self.join + query, WATCH_TIMEOUT + 30)
        try:
            for line in lines:
                if self.stop.is_set():
                    break
                try:
                    event = response_json(f"watch {self.kind}", line)
                except ClusterError as e:
                    log.warning("cache: %s watch event skipped: %s", self.kind, e)
                    continue
                kind, obj = event.get("type"), event.get("object")
                if not isinstance(obj, dict):
                    log.warning("cache: %s %s event without an object skipped", self.kind, kind)
                    continue
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                rv = _resource_version(obj, rv)
                if kind == "BOOKMARK":
                    continue
                value = self._converted(obj, f"{kind} event")
                if value is None:
                    continue
                key = (value.namespace, value.name)
                with self.lock:
                    if kind == "DELETED":
                        old = self.items.pop(key, None)
                    else:
                        old, self.items[key] = self.items.get(key), value
                if self.on_change is not None:
                    self.on_change(old, None if kind == "DELETED" else value)
        finally:
            lines.close()  # its connection
        return rv

    def _run(self) -> None:
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                rv = self._watch(rv)
            except Gone:
                log.info("cache: %s resourceVersion %s is gone: relisting", self.kind, rv)
                rv = ""
            except LineTooLong as e:  # no object of ours: whatever it was, list afresh
                log.warning("cache: %s watch sent %s: relisting", self.kind, e)
                rv = ""
                self.stop.wait(RETRY_DELAY)
            except HTTPFailure as e:
                if e.status == 410:
                    log.info("cache: %s resourceVersion %s is gone: relisting", self.kind, rv)
                    rv = ""
                    continue
                log.warning("cache: %s watch failed: %s %s", self.kind, e.status, e.reason)
                self.problem = f"{'watch' if rv else 'list'} answered {e.status} {e.reason}"
                self.stop.wait(RETRY_DELAY)
            except Exception as e:  # connection loss, timeouts: keep the cache, retry
                log.warning("cache: %s watch interrupted: %s", self.kind, e)
                self.problem = f"{'watch' if rv else 'list'} failed: {e}"
                self.stop.wait(RETRY_DELAY)

    def get(self, namespace: str, name: str) -> Any:
        with self.lock:
            return self.items.get((namespace, name))

    def put(self, namespace: str, name: str, obj: Any) -> None:
        with self.lock:
            self.items[(namespace, name)] = obj

    def __len__(self) -> int:
        with self.lock:
            return len(self.items)


def _unsynced(informer: Informer, e: CNIError) -> CNIError:
    """The error of a GET the cache fell back to, saying when the cache has not synced
    (its list failing): what the operator must fix is often the list, not the GET."""
    if informer.synced.is_set():
        return e
    why = f" ({informer.problem})" if informer.problem else ""
    return e.with_context(f"the daemon's cache of {informer.kind} is not synced yet{why}")


def _resource_version(obj: dict[str, Any], default: str) -> str:
    meta = obj.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return rv if isinstance(rv, str) and rv else default


class CachedCluster:
    """A Cluster backed by informers, falling back to `api` on a miss."""

    def __init__(self, api: WatchedApi, node_name: str) -> None:
        self.api = api
        self.stop = threading.Event()
        pods = PODS_PATH
        if node_name:
            pods += "?fieldSelector=" + quote(f"spec.nodeName={node_name}", safe="")
        self.nads = Informer(
            "networkattachmentdefinitions", api, NADS_PATH, nad_from_json, self.stop
        )
        self.pods = Informer("pods", api, pods, pod_from_json, self.stop)
        # (the pod, or the node's name, reason, message, warning)
        self.events: queue.Queue[tuple[Pod | str, str, str, bool] | None] = queue.Queue(1000)
        self.event_thread = threading.Thread(target=self._send_events, name="events", daemon=True)

    def start(self, wait: float = 10.0) -> bool:
        """Start the watches; True when both caches synced within `wait` seconds."""
        self.nads.start()
        self.pods.start()
        self.event_thread.start()
        return self.nads.synced.wait(wait) and self.pods.synced.wait(wait)

    def close(self) -> None:
        self.stop.set()
        self.events.put(None)

    def synced(self) -> bool:
        return self.nads.synced.is_set() and self.pods.synced.is_set()

    def sizes(self) -> dict[str, int]:
        return {"pods": len(self.pods), "network_attachment_definitions": len(self.nads)}

    def watch_pods(
        self, on_change: Callable[[Pod | None, Pod | None], None], on_list: Callable[[], None]
    ) -> None:
        """Be told of every change of this node's pods (old, new) and of every (re)list;
        before start()."""
        self.pods.on_change, self.pods.on_list = on_change, on_list

    def watch_nads(self, on_change: Callable[[NAD | None, NAD | None], None]) -> None:
        """Be told of every change of a NAD (old, new), and of a (re)list as (None, None):
        it may hold NADs that came while nobody watched; before start()."""
        self.nads.on_change = on_change
        self.nads.on_list = lambda: on_change(None, None)

    # -- Cluster -------------------------------------------------------------

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        pod: Pod | None = self.pods.get(namespace, name)
        if pod is not None and (not uid or not pod.uid or pod.uid == uid):
            return pod
        # A miss, or a copy of another pod of that name (the watch lags): ask the API.
        try:
            pod = self.api.get_pod(namespace, name)
        except CNIError as e:
            raise _unsynced(self.pods, e) from None
        if pod is not None:
            self.pods.put(namespace, name, pod)
        return pod

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        nad: NAD | None = self.nads.get(namespace, name)
        if nad is not None:
            return nad
        try:
            return self.api.get_nad(namespace, name)
        except CNIError as e:
            raise _unsynced(self.nads, e) from None

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        self.api.set_network_status(pod, status)

    def emit_event(self, pod: Pod, reason: str, message: str, warning: bool = False) -> None:
        try:
            self.events.put_nowait((pod, reason, message, warning))
        except queue.Full:
            log.warning("event queue full: dropped %s for %s", reason, pod.key)

    def emit_node_event(self, node: str, reason: str, message: str, warning: bool = False) -> None:
        try:
            self.events.put_nowait((node, reason, message, warning))
        except queue.Full:
            log.warning("event queue full: dropped %s for node %s", reason, node)

    def _send_events(self) -> None:
        while True:
            item = self.events.get()
            if item is None:
                return
            about, reason, message, warning = item
            if isinstance(about, str):
                self.api.emit_node_event(about, reason, message, warning)
            else:
                self.api.emit_event(about, reason, message, warning)
