"""A fake kube-apiserver for tests: HTTPS, bearer token, the real wire format.

The real ``kubernetes`` client (and anything else that speaks the API) talks to
it as to a cluster: discovery, Pods (with ``/status``), NetworkAttachmentDefinitions,
core/v1 and events.k8s.io/v1 Events; get, list (label and field selectors,
``limit``/``continue``), watch (replay from a resourceVersion, 410 after
compaction, bookmarks, ``sendInitialEvents``), create, replace, patch (merge,
strategic merge, JSON patch), delete with preconditions, ``dryRun=All``; and
``Status`` bodies with the codes, reasons and messages of the real server.
Tests seed and inspect objects, inject faults, take the server down and mint bearer
tokens that expire (as bound service-account tokens do).
Modules: ``kubeapi_http`` (connections, auth, dispatch), ``kubeapi_auth`` (tokens that
expire), ``kubeapi_routes``,
``kubeapi_store`` + ``kubeapi_types`` (objects and per-kind rules),
``kubeapi_watch`` (resourceVersions, history, watches), ``kubeapi_patch``,
``kubeapi_select``, ``kubeapi_status``.

Like the real server, a different ``metadata.uid`` in a PATCH is a 422 Invalid
(uid is immutable; PATCH has no UID precondition), while the UID of a PUT body
is a precondition (409 Conflict).

Deliberately NOT implemented (details in tests/support/README.md):
- server-side apply (``application/apply-patch+yaml`` is a 415), managedFields;
- admission (no ServiceAccount/priority/LimitRange mutation, no webhooks),
  authorization/RBAC (every token that authenticates has full access), impersonation;
- other resources (no Namespace objects: any namespace exists), pods/binding,
  pods/log, exec, eviction, deletecollection, the legacy ``/watch/`` paths;
- graceful deletion (a DELETE removes the object at once, finalizers ignored),
  garbage collection, ``generation`` on Pods;
- ``resourceVersion``/``resourceVersionMatch`` on GET and list (always the
  latest state; a continued list reads the latest state too);
- field selectors beyond each kind's declared labels (Pods: metadata.name,
  metadata.namespace, spec.nodeName, spec.restartPolicy, spec.schedulerName,
  spec.serviceAccountName, spec.hostNetwork, status.phase, status.podIP,
  status.nominatedNodeName; NADs: metadata.name, metadata.namespace);
- strategic merge patch merge keys chosen by field name (exact for Pods),
  ``$setElementOrder`` ordering;
- validation beyond common client mistakes (names, required fields, immutability);
- protobuf/CBOR/YAML bodies, Table output, aggregated discovery;
- the two Event APIs share no storage here (the real server converts between them).
"""

from __future__ import annotations

import atexit
import json
import shutil
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from .kubeapi_auth import Tokens
from .kubeapi_faults import Fault, Status
from .kubeapi_http import HTTPServer, Traffic
from .kubeapi_patch import merge_patch
from .kubeapi_status import KubeAPIError
from .kubeapi_store import Store
from .kubeapi_types import CORE_EVENT, EVENT_V1, IPPOOL, NAD, POD, ResourceType

JSON = dict[str, Any]

__all__ = ["KubeAPIError", "KubeAPIServer", "client_certificate"]

# --- TLS material ---------------------------------------------------------

_CERT_LOCK = threading.Lock()
_CERTS: tuple[str, str, str] | None = None

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = multinet-test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _certificates() -> tuple[str, str, str]:
    """(ca, cert, key) paths: a CA and a server certificate it signed, made once per process."""
    global _CERTS
    with _CERT_LOCK:
        if _CERTS is None:
            d = Path(tempfile.mkdtemp(prefix="kubeapi-tls-"))
            atexit.register(shutil.rmtree, d, True)
            (d / "openssl.cnf").write_text(_OPENSSL_CNF)
            ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            for args in (
                f"req -x509 -config openssl.cnf -extensions ca {ec} -keyout ca.key -out ca.crt"
                " -days 3 -subj /CN=multinet-test-ca",
                f"req -new -config openssl.cnf {ec} -keyout server.key -out server.csr"
                " -subj /CN=kube-apiserver",
                "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 3"
                " -extfile openssl.cnf -extensions server -out server.crt",
            ):
                subprocess.run(["openssl", *args.split()], cwd=d, check=True, capture_output=True)
            _CERTS = (str(d / "ca.crt"), str(d / "server.crt"), str(d / "server.key"))
        return _CERTS


def client_certificate(directory: str, user: str = "multinet") -> tuple[str, str, str]:
    """(ca, cert, key) paths in ``directory``: a new CA (``client_ca_file=`` of a server)
    and a client certificate it signed for ``user`` (CN, as kube-apiserver reads it)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "openssl.cnf").write_text(_OPENSSL_CNF)
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    for args in (
        f"req -x509 -config openssl.cnf -extensions ca {ec} -keyout client-ca.key"
        " -out client-ca.crt -days 3 -subj /CN=multinet-test-client-ca",
        f"req -new -config openssl.cnf {ec} -keyout client.key -out client.csr -subj /CN={user}",
        "x509 -req -in client.csr -CA client-ca.crt -CAkey client-ca.key -set_serial 3 -days 3"
        " -extfile openssl.cnf -extensions client -out client.crt",
    ):
        subprocess.run(["openssl", *args.split()], cwd=d, check=True, capture_output=True)
    return str(d / "client-ca.crt"), str(d / "client.crt"), str(d / "client.key")


# --- the fake -------------------------------------------------------------


class KubeAPIServer:
    """A kube-apiserver stand-in on https://127.0.0.1:PORT; see the module docstring.

    ``history`` is how many changes watches can replay; ``watch_timeout`` the
    length of a watch that asks for none (the real server picks 30-60 min);
    ``bookmark_interval`` the BOOKMARK period for watches that allow them.
    ``client_ca_file``: client certificates it signed authenticate (kube-apiserver's
    ``--client-ca-file``); ``tls=False``: plain HTTP, as behind ``kubectl proxy``.
    """

    def __init__(
        self,
        token: str = "test-token",
        *,
        history: int = 10_000,
        watch_timeout: float = 1800.0,
        bookmark_interval: float = 1.0,
        client_ca_file: str = "",
        tls: bool = True,
    ) -> None:
        self.token = token
        self.tokens = Tokens()
        self.client_ca_file = client_ca_file
        self.tls = tls
        self.watch_timeout = watch_timeout
        self.bookmark_interval = bookmark_interval
        self.store = Store(history)
        self.traffic = Traffic()
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ctx: ssl.SSLContext | None = None
        self._started = False
        self._port = 0
        self._ca_file = ""

    # --- lifecycle ---

    def start(self) -> None:
        if self._started:
            raise RuntimeError("KubeAPIServer already started")
        self._started = True
        if self.tls:
            self._ca_file, cert, key = _certificates()
            self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ctx.load_cert_chain(cert, key)
            if self.client_ca_file:  # --client-ca-file: a certificate it signed authenticates
                self._ctx.load_verify_locations(cafile=self.client_ca_file)
                self._ctx.verify_mode = ssl.CERT_OPTIONAL
        self._listen()

    def stop(self) -> None:
        self.traffic.faults.clear()  # requests hanging on a fault end
        self.store.changes.close()
        self._unlisten()

    def __enter__(self) -> KubeAPIServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _listen(self) -> None:
        assert self._started, "start() first"
        server = HTTPServer(("127.0.0.1", self._port), self, self._ctx)
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"kubeapi-{self._port}",
            daemon=True,
        )
        self._server = server
        self._thread.start()

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()  # the listening socket: new connections are refused
        self.store.changes.end_watches()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join()

    def set_down(self, down: bool) -> None:
        """Down: the port refuses connections and open ones are cut. Up: listen again."""
        if down:
            self._unlisten()
        elif self._server is None:
            self._listen()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def ca_file(self) -> str:
        return self._ca_file

    def write_kubeconfig(self, path: str) -> str:
        # JSON is YAML: every kubeconfig loader reads it.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {"server": self.url, "certificate-authority": self.ca_file}
                    if self.tls
                    else {"server": self.url},
                }
            ],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        Path(path).write_text(json.dumps(config, indent=2) + "\n")
        return path

    # --- objects (through the same store as HTTP) ---

    def add_pod(self, manifest: JSON) -> JSON:
        """Seed a Pod as-is (status, uid and creationTimestamp kept when given)."""
        ns = (manifest.get("metadata") or {}).get("namespace") or "default"
        return self.store.create(POD, ns, manifest, seed=True)

    def get_pod(self, ns: str, name: str) -> JSON | None:
        return self._get(POD, ns, name)

    def patch_pod(self, ns: str, name: str, patch: JSON) -> JSON:
        """Merge-patch a Pod with no API rules (play kubelet: status, deletionTimestamp...)."""
        return self.store.update(POD, ns, name, lambda cur: merge_patch(cur, patch), seed=True)

    def delete_pod(self, ns: str, name: str) -> None:
        self.store.delete(POD, ns, name)

    def add_nad(self, manifest: JSON) -> JSON:
        body = {"apiVersion": NAD.api_version, "kind": NAD.kind, **manifest}
        ns = (body.get("metadata") or {}).get("namespace") or "default"
        return self.store.create(NAD, ns, body, seed=True)

    def get_nad(self, ns: str, name: str) -> JSON | None:
        return self._get(NAD, ns, name)

    def delete_nad(self, ns: str, name: str) -> None:
        self.store.delete(NAD, ns, name)

    def ip_pools(self) -> list[JSON]:
        """Every IPPool (multinet-ipam's), in every namespace, oldest write first."""
        return self.store.all(IPPOOL)

    def events(self) -> list[JSON]:
        """Every Event posted through either API, oldest first."""
        both = self.store.all(CORE_EVENT) + self.store.all(EVENT_V1)
        return sorted(both, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def _get(self, rt: ResourceType, ns: str, name: str) -> JSON | None:
        try:
            return self.store.get(rt, ns, name)
        except KubeAPIError as e:
            if e.code == 404:
                return None
            raise

    @property
    def resource_version(self) -> str:
        return str(self.store.resource_version)

    def compact(self) -> None:
        """Drop the watch history: watching from any older resourceVersion gets 410."""
        self.store.changes.compact()

    def end_watches(self) -> None:
        """End every open watch, as the server does at a watch's timeout: the clients
        watch again, from the resourceVersion they had, with the token they have now."""
        self.store.changes.end_watches()

    def wait_for_watchers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``count`` watch requests are being served (to avoid racing them)."""
        return self.store.changes.wait_for_watchers(count, timeout)

    # --- tokens ---

    def mint_token(self, lifetime: float) -> str:
        """A bound service-account token valid for ``lifetime`` seconds (TokenRequest),
        accepted besides ``token`` until it expires; then a 401 (``kubeapi_auth``)."""
        return self.tokens.mint(lifetime)

    def revoke_token(self, token: str) -> None:
        self.tokens.revoke(token)

    # --- faults and accounting ---

    def fail_next(self, n: int, status: int, path_contains: str = "", method: str = "") -> None:
        """The next ``n`` authenticated requests matching get ``status`` and a Status body.

        ``path_contains`` is matched against the URL-decoded path and query.
        """
        self.traffic.add_fault(Status(status), n, path_contains, method)

    def inject(
        self, fault: Fault, *, times: int | None = None, path_contains: str = "", method: str = ""
    ) -> None:
        """Answer the next ``times`` matching authenticated requests (None: every one, until
        ``clear_faults()``) with ``fault`` (kubeapi_faults: Status, Hang, CutShort,
        Truncated, Body)."""
        self.traffic.add_fault(fault, times, path_contains, method)

    def clear_faults(self) -> None:
        """No more faults; requests hanging on a Hang fault end (unanswered) now."""
        self.traffic.faults.clear()

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, URL-decoded path with query) of every request so far, oldest first."""
        return self.traffic.requests()

    def reset_requests(self) -> None:
        self.traffic.reset()

    def request_count(self, method: str | None = None, path_contains: str = "") -> int:
        return sum(
            1
            for m, p in self.requests
            if (method is None or m == method.upper()) and path_contains in p
        )
