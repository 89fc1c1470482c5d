"""The API server for multinetd: one client shared by the daemon's threads, with the
list and watch its caches (`cluster.cache`) need.

The standard-library client (`rest.RestCluster`, thin mode's) carries it: the official
`kubernetes` client and its models cost multinetd ~47 MiB of its RSS at rest
(docs/performance.md). Requests from many threads share up to `POOL` kept-alive
connections (a warm cache leaves an ADD one request: the status patch), a thread past
that waits for one; an idle connection older than `IDLE_MAX`, or that the server closed
(readable while idle), is dropped when taken, and one the server closes as the request
goes out is replaced (`http11.Connection.request`). Each watch, and each page of a list
(`LIST_TIMEOUT`), has a connection of its own. The credentials are checked on every
request and read again when their files changed (`credentials`), and after a 401: a
request, a page of a list or a watch refused 401 is sent once more when they changed
(the watch resumes from its resourceVersion). The kubeconfig forms only the official
client implements (`kubeconfig.needs_full_client`) keep it (`kube.KubeCluster`),
imported then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from multinet.cluster import kubeconfig
from multinet.cluster.api import HTTPFailure
from multinet.cluster.base import Cluster
from multinet.cluster.credentials import Source
from multinet.cluster.rest import RestCluster

if TYPE_CHECKING:
    from multinet.cluster.http11 import Connection, Stream

POOL = 8  # connections for requests at once (urllib3's default pool of the official client: 10)
# Seconds an idle connection is kept: less than the idle timeouts that close them on the
# way (load balancers: ~20 s and more; kube-apiserver: 90 s).
IDLE_MAX = 15.0
LIST_TIMEOUT = 60.0  # seconds to read a page of a list (the API server reads it from etcd)
# A watch event's line: etcd stores objects of up to 1.5 MiB; a longer line is no object
# multinet could use, and is not buffered whole inside the daemon's memory budget.
MAX_EVENT = 4 << 20


if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # as cluster.base's protocols: plain classes at run time


class WatchedApi(Cluster, Protocol):
    """What the caches read: a Cluster with list and watch of a collection."""

    def list_json(self, path: str) -> bytes:
        """The body of GET `path` (a list); HTTPFailure when the status is not 2xx."""
        ...

    def watch_lines(self, path: str, read_timeout: float) -> Generator[bytes, None, None]:
        """The JSON lines of a watch (GET `path`, which asks for one) as they come, until
        the server ends it; HTTPFailure when the status is not 2xx. A generator: closing
        it closes the connection."""
        ...

    def emit_node_event(self, node: str, reason: str, message: str, warning: bool = False) -> None:
        """Best effort: an event on the node (failures are logged, never raised)."""
        ...


class SharedRestCluster(RestCluster):
    """RestCluster for a long-lived process with many threads: each request on a
    connection of the pool, taken by its thread for the request's length."""

    def __init__(self, kubeconfig: str, state_dir: str) -> None:
        super().__init__(kubeconfig, state_dir)
        self._lock = threading.Lock()  # the idle connections
        self._reading = threading.RLock()  # the credentials, checked and read by one thread
        self._slots = threading.BoundedSemaphore(POOL)
        self._idle: list[Connection] = []
        self._mine = threading.local()  # the connection the thread's request holds

    def _credentials(self) -> tuple[kubeconfig.Endpoint, Source]:
        with self._reading:
            return super()._credentials()

    def _version(self) -> object:
        with self._reading:
            return super()._version()

    def _renew(self, version: object) -> bool:
        with self._reading:
            return super()._renew(version)

    def reload(self) -> None:
        super().reload()  # the thread's own connection, the endpoint forgotten
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:  # opened with the old credentials (a client certificate)
            conn.close()

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._mine, "conn", None)
        while conn is None:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self.new_connection()
            elif time.monotonic() - conn.idle_since > IDLE_MAX or conn.dropped():
                conn.close()  # closed by the server, or soon to be: never sent on
                conn = None
        self._mine.conn = conn
        return conn

    def close(self) -> None:
        """Close the connection the calling thread holds, if any."""
        conn, self._mine.conn = getattr(self._mine, "conn", None), None
        if conn is not None:
            conn.close()

    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = ""
    ) -> bytes:
        with self._slots:
            try:
                return super()._request(method, path, body=body, content_type=content_type)
            finally:
                conn, self._mine.conn = getattr(self._mine, "conn", None), None
                if conn is not None:  # still open: the next request's
                    with self._lock:
                        self._idle.append(conn)

    def check(self) -> None:
        """Read the kubeconfig (or the service account) now: ClusterError when it is
        unusable, so that a daemon given a broken one does not start."""
        self._target  # noqa: B018  # the endpoint, and its server URL checked

    def list_json(self, path: str) -> bytes:
        """A page of a list: on a connection of its own, read for up to LIST_TIMEOUT."""
        return self._authorized(lambda: self._list_page(path))

    def _list_page(self, path: str) -> bytes:
        conn = self.new_connection(LIST_TIMEOUT)
        try:
            resp = self._exchange(conn, "GET", path)
        finally:
            conn.close()
        if not 200 <= resp.status <= 299:
            raise HTTPFailure(resp.status, resp.reason, resp.body)
        return resp.body

    def watch_lines(self, path: str, read_timeout: float) -> Generator[bytes, None, None]:
        stream = self._authorized(lambda: self._watch(path, read_timeout))
        try:
            yield from stream.lines(MAX_EVENT)
        finally:
            stream.close()

    def _watch(self, path: str, read_timeout: float) -> Stream:
        """The watch's stream, its answer 2xx; HTTPFailure (the stream closed) if not."""
        stream = self.open_stream(path, read_timeout)
        if not 200 <= stream.status <= 299:
            try:
                raise HTTPFailure(stream.status, stream.reason, stream.body())
            finally:
                stream.close()
        return stream


def watched_api(kubeconfig: str, state_dir: str) -> WatchedApi:
    """The daemon's client: the standard library's, or the official client for the
    kubeconfig forms only it implements; its configuration read now (ClusterError)."""
    from multinet.cluster.kubeconfig import needs_full_client

    if needs_full_client(kubeconfig):
        from multinet.cluster.kube import KubeCluster  # the fallback: lazily, see pyproject

        full = KubeCluster(kubeconfig, state_dir=state_dir)
        full.api_client  # noqa: B018  # built now: a broken kubeconfig stops the start
        return full
    api = SharedRestCluster(kubeconfig, state_dir)
    api.check()
    return api
