"""The Kubernetes API server as a Cluster, with the standard library only.

Thin mode's per-call path: `ssl`, `json` and `cluster.http11` (a minimal HTTP/1.1
connection: `http.client` alone costs ~11 ms more to import) where the `kubernetes`
client costs ~600 ms (docs/thin-mode.md). One connection per client, kept alive for the
requests of a call (GET pod, GET NADs, PATCH status, POST event) and closed by
`close()`; no retries but `ApiCluster`'s. The endpoint (`kubeconfig.load`) is read on
first use, and `ssl` and the connection imported then: a DEL answered by the journal
never needs the API server (nor their ~10 ms), and must not fail because the kubeconfig
is unreadable. Each request carries the newest token of its file, and a change of the
kubeconfig or of its TLS files reads the endpoint again (`credentials`); a 401 reads them
again whatever the files say, and the request is sent once more if they changed.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping

from multinet.cluster import kubeconfig
from multinet.cluster.api import TIMEOUT, ApiCluster, HTTPFailure
from multinet.cluster.credentials import Files, Source
from multinet.cni.errors import ClusterError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    import ssl

    from multinet.cluster.http11 import Connection, Response, Stream

USER_AGENT = "multinet"
# A kubeconfig's usual server, split without urllib.parse (~11 million instructions to
# import, on every thin-mode ADD); anything else (user info, a query, an escape) is
# urllib.parse.urlsplit's.
PLAIN_SERVER = re.compile(
    r"(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?(/[^?#@%]*)?", re.ASCII
)


def split_server(server: str, source: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path prefix) of a kubeconfig's server URL, as urlsplit reads it."""
    plain = PLAIN_SERVER.fullmatch(server)
    if plain is not None and (plain[3] is None or int(plain[3]) <= 65535):
        port = int(plain[3]) if plain[3] is not None else None
        return plain[1], plain[2].strip("[]").lower(), port, (plain[4] or "").rstrip("/")
    from urllib.parse import urlsplit

    url = urlsplit(server)
    try:
        port = url.port
    except ValueError as e:
        raise ClusterError(f"cannot load {source}", f"server {server}: {e}") from None
    if not url.hostname:
        raise ClusterError(f"cannot load {source}", f"server {server}: no host")
    return url.scheme, url.hostname, port, url.path.rstrip("/")


class RestCluster(ApiCluster):
    _loaded: tuple[kubeconfig.Endpoint, Source] | None  # the endpoint, its credentials' source

    def __init__(
        self,
        kubeconfig: str,
        state_dir: str,
        *,
        service_account: str = kubeconfig.SERVICE_ACCOUNT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(kubeconfig, state_dir)
        self.service_account = service_account
        self.environ = environ
        self._conn: Connection | None = None
        self._loaded = None
        self._reloads = 0

    def _load(self) -> tuple[kubeconfig.Endpoint, Source]:
        config = Files(self.kubeconfig)  # stamped before it is read
        ep = kubeconfig.load(self.kubeconfig, self.service_account, self.environ)
        # The TLS files are read after this, by _tls: stamped now.
        files = config + Files(ep.ca_file, ep.cert_file, ep.key_file)
        return ep, Source(files, ep.token, ep.token_file)

    def _credentials(self) -> tuple[kubeconfig.Endpoint, Source]:
        """The endpoint and where its credentials came from; read again (new connections,
        a new TLS context) when the kubeconfig or a file of its TLS material changed."""
        if self._loaded is not None and self._loaded[1].stale():
            self.reload()
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    @property
    def endpoint(self) -> kubeconfig.Endpoint:
        return self._credentials()[0]

    def _version(self) -> object:
        _, source = self._loaded or self._credentials()
        return (self._reloads, source.version)

    def _renew(self, version: object) -> bool:
        if self._version() != version:
            return True  # read again since the request was sent
        try:
            fresh = self._load()
        except ClusterError:
            return False  # the 401 stands; the next request reports the kubeconfig
        if self._loaded is not None and self._loaded[1].same(fresh[1]):
            return False
        self.reload()
        self._loaded = fresh
        return True

    @functools.cached_property
    def _target(self) -> tuple[str, str, int | None, str, dict[str, str]]:
        """(scheme, host, port, path prefix, fixed headers) of the endpoint."""
        ep = self.endpoint
        scheme, hostname, port, prefix = split_server(ep.server, ep.source)
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        headers["User-Agent"] = USER_AGENT
        return scheme, hostname, port, prefix, headers

    def _headers(self) -> dict[str, str]:
        """The fixed headers and the newest token."""
        headers = dict(self._target[4])
        _, source = self._loaded or self._credentials()
        if authorization := source.authorization():
            headers["Authorization"] = authorization
        return headers

    @functools.cached_property
    def _tls(self) -> ssl.SSLContext:
        import ssl

        ep = self.endpoint
        try:
            return _tls_context(ep)
        except (ssl.SSLError, OSError, ValueError) as e:
            raise ClusterError(f"cannot load {ep.source}", f"TLS material: {e}") from None

    def _connection(self) -> Connection:
        from multinet.cluster.http11 import Connection

        if self._conn is None:
            scheme, host, port, _, _ = self._target
            connect, read = TIMEOUT
            tls = self._tls if scheme == "https" else None
            self._conn = Connection(host, port, tls=tls, connect_timeout=connect, read_timeout=read)
        return self._conn

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        from multinet.cluster.http11 import ProtocolError

        return (OSError, ProtocolError)

    def _exchange(
        self, conn: Connection, method: str, path: str, body: Any = None, content_type: str = ""
    ) -> Response:
        """One request to the endpoint on `conn`, its answer read to the end."""
        prefix = self._target[3]
        headers = self._headers()
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type or "application/json"
        return conn.request(method, prefix + path, headers, payload)

    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = ""
    ) -> bytes:
        self._credentials()  # read again first if they changed: the connection with them
        try:
            resp = self._exchange(self._connection(), method, path, body, content_type)
        except BaseException:
            self.close()  # half a request on it: the next attempt starts afresh
            raise
        if resp.will_close:
            self.close()
        if not 200 <= resp.status <= 299:
            raise HTTPFailure(resp.status, resp.reason, resp.body)
        return resp.body

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def reload(self) -> None:
        """Read the kubeconfig (and the files it names) again on the next request, on new
        connections."""
        self.close()
        self._loaded = None
        self._reloads += 1
        for name in ("_target", "_tls"):
            self.__dict__.pop(name, None)  # the cached_properties

    def new_connection(self, read_timeout: float | None = None) -> Connection:
        """A connection to the endpoint of its own, not yet open (the caller's to close);
        a request's read timeout unless told."""
        from multinet.cluster.http11 import Connection

        self._credentials()  # read again first if they changed
        scheme, host, port, _, _ = self._target
        tls = self._tls if scheme == "https" else None
        connect, read = TIMEOUT
        return Connection(
            host, port, tls=tls, connect_timeout=connect, read_timeout=read_timeout or read
        )

    def open_stream(self, path: str, read_timeout: float) -> Stream:
        """GET `path` on a connection of its own (a watch, open for minutes), only the
        answer's head read; the caller reads the body as it comes, then closes it."""
        conn = self.new_connection(read_timeout)
        try:
            return conn.stream(self._target[3] + path, self._headers())
        except BaseException:
            conn.close()
            raise


def _tls_context(ep: kubeconfig.Endpoint) -> ssl.SSLContext:
    """Server verification by the kubeconfig's CA (the system's without one, as the
    official client through urllib3), or none with insecure-skip-tls-verify; the
    client certificate, if any."""
    import ssl

    if ep.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ep.ca_file or ep.ca_data:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host
        if ep.ca_file:
            ctx.load_verify_locations(cafile=ep.ca_file)
        if ep.ca_data:
            ctx.load_verify_locations(cadata=ep.ca_data.decode("ascii", errors="replace"))
    else:
        ctx = ssl.create_default_context()
    if ep.cert_file or ep.cert_data:
        _load_client_certificate(ctx, ep)
    return ctx


def _load_client_certificate(ctx: ssl.SSLContext, ep: kubeconfig.Endpoint) -> None:
    """ssl reads a certificate and key only from files: inline data goes through a
    private (0600) temporary file, removed as soon as it is loaded."""
    import tempfile

    if ep.cert_file and ep.key_file:
        ctx.load_cert_chain(ep.cert_file, ep.key_file)
        return
    cert = ep.cert_data or _read(ep.cert_file)
    key = ep.key_data or _read(ep.key_file)
    fd, name = tempfile.mkstemp(prefix="multinet-client-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert.rstrip(b"\n") + b"\n" + key)
        ctx.load_cert_chain(name)
    finally:
        os.unlink(name)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
