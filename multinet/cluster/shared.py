"""The API server for multinetd: one client shared by the daemon's threads, with the
list and watch its caches (`cluster.cache`) need.

The standard-library client (`rest.RestCluster`, thin mode's) carries it: the official
`kubernetes` client and its models cost multinetd ~47 MiB of its RSS at rest
(docs/performance.md). Requests from many threads share up to `POOL` kept-alive
connections (a warm cache leaves an ADD one request: the status patch), a thread past
that waits for one; an idle connection older than `IDLE_MAX`, or that the server closed
(readable while idle), is dropped when taken, and one the server closes as the request
goes out is replaced (`http11.Connection.request`). Each watch, and each page of a list
(`LIST_TIMEOUT`), has a connection of its own. The credentials are checked every
`REFRESH` seconds, and read again when they changed (and after a 401), as a projected
service-account token rotates. The kubeconfig forms only the official client implements
(`kubeconfig.needs_full_client`) keep it (`kube.KubeCluster`), imported then.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from multinet.cluster import kubeconfig
from multinet.cluster.api import HTTPFailure
from multinet.cluster.base import Cluster
from multinet.cluster.rest import RestCluster
from multinet.cni.errors import ClusterError

if TYPE_CHECKING:
    from multinet.cluster.http11 import Connection, Stream

REFRESH = 60.0  # seconds; the official client's in-cluster loader re-reads its token as often
POOL = 8  # connections for requests at once (urllib3's default pool of the official client: 10)
# Seconds an idle connection is kept: less than the idle timeouts that close them on the
# way (load balancers: ~20 s and more; kube-apiserver: 90 s).
IDLE_MAX = 15.0
LIST_TIMEOUT = 60.0  # seconds to read a page of a list (the API server reads it from etcd)
# A watch event's line: etcd stores objects of up to 1.5 MiB; a longer line is no object
# multinet could use, and is not buffered whole inside the daemon's memory budget.
MAX_EVENT = 4 << 20


_UNREADABLE = object()  # a fingerprint unlike any other: the credentials are read again


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


class SharedRestCluster(RestCluster):
    """RestCluster for a long-lived process with many threads: each request on a
    connection of the pool, taken by its thread for the request's length."""

    def __init__(self, kubeconfig: str, state_dir: str) -> None:
        super().__init__(kubeconfig, state_dir)
        self._lock = threading.Lock()  # the idle connections and the credentials' age
        self._slots = threading.BoundedSemaphore(POOL)
        self._idle: list[Connection] = []
        self._mine = threading.local()  # the connection the thread's request holds
        self._loaded = time.monotonic()
        self._seen: object = None  # the credentials' fingerprint, taken on first use

    def _fresh(self) -> None:
        """Every REFRESH seconds, read the credentials again if they changed: a new
        TLS context (and, for inline client-certificate data, a temporary key file) and
        new connections only then."""
        with self._lock:
            due = time.monotonic() - self._loaded > REFRESH
            if due:
                self._loaded = time.monotonic()
            first = self._seen is None
        if not (due or first):
            return
        seen = self._fingerprint()
        with self._lock:
            changed, self._seen = self._seen is not None and seen != self._seen, seen
        if changed or seen is _UNREADABLE:
            self.reload()  # an unreadable kubeconfig: its error on the request

    def _fingerprint(self) -> object:
        """What the endpoint is made of: the kubeconfig's (or service account's)
        content as loaded, and the age of the files it names by path."""
        try:
            ep = kubeconfig.load(self.kubeconfig, self.service_account, self.environ)
        except ClusterError:
            return _UNREADABLE
        files: list[object] = []
        for name in (ep.ca_file, ep.cert_file, ep.key_file):
            try:
                st = os.stat(name) if name else None
            except OSError as e:
                files.append(str(e))
                continue
            files.append((st.st_ino, st.st_size, st.st_mtime_ns) if st else None)
        return (ep, tuple(files))

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
        self._fresh()
        with self._slots:
            try:
                try:
                    return super()._request(method, path, body=body, content_type=content_type)
                except HTTPFailure as e:
                    if e.status != 401:
                        raise
                    self.reload()  # a token rotated since: once more with the current one
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
        self._fresh()
        conn = self.new_connection(LIST_TIMEOUT)
        try:
            resp = self._exchange(conn, "GET", path)
        finally:
            conn.close()
        if not 200 <= resp.status <= 299:
            self._refused(resp.status)
            raise HTTPFailure(resp.status, resp.reason, resp.body)
        return resp.body

    def _refused(self, status: int) -> None:
        if status == 401:
            with self._lock:
                self._loaded, self._seen = 0.0, _UNREADABLE  # read again on the next request

    def watch_lines(self, path: str, read_timeout: float) -> Generator[bytes, None, None]:
        self._fresh()
        stream: Stream = self.open_stream(path, read_timeout)
        try:
            if not 200 <= stream.status <= 299:
                self._refused(stream.status)
                raise HTTPFailure(stream.status, stream.reason, stream.body())
            yield from stream.lines(MAX_EVENT)
        finally:
            stream.close()


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
