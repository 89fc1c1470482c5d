"""Where the API server is and how to authenticate to it: a kubeconfig, or the pod's
service account, read with the standard library (and PyYAML's C loader only when
the kubeconfig is not JSON).

Supported natively (the forms a node has): the current context's cluster `server`
(https, or http), `certificate-authority` (a file) or `certificate-authority-data`,
`insecure-skip-tls-verify`; the user's `token`, `tokenFile` (which wins over
`token`, as in client-go), `client-certificate`/`client-key` (files) and
`client-certificate-data`/`client-key-data`. Relative paths are resolved against
the kubeconfig's directory. Without a kubeconfig: the in-cluster service account
(`KUBERNETES_SERVICE_HOST`/`_PORT`, `token` and `ca.crt` under `service_account`).
A token is trimmed, as client-go trims it; the file it came from is kept, to be read
again as it rotates (`credentials`).

Everything else (exec credential plugins, auth-provider, username/password,
proxy-url, tls-server-name) is `needs_full_client`: the caller falls back to the
official client. Every problem is a ClusterError naming the kubeconfig and the key.
"""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import Mapping

from multinet.cluster.credentials import checked_token, read_token
from multinet.cni.errors import ClusterError, CredentialsError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from multinet.record import NamedTuple

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Keys of a user (or a cluster) that only the official client implements.
FULL_CLIENT_USER_KEYS = ("exec", "auth-provider", "username", "password")
FULL_CLIENT_CLUSTER_KEYS = ("proxy-url", "tls-server-name")


class Endpoint(NamedTuple):  # not a dataclass: ~1 ms less of thin mode's per-call imports
    """An API server and the credentials for it. `*_data` are PEM bytes."""

    server: str
    source: str  # "kubeconfig PATH" or "in-cluster configuration", for messages
    ca_file: str = ""
    ca_data: bytes = b""
    insecure: bool = False
    token: str = ""
    token_file: str = ""  # where `token` was read: read again as it rotates (credentials)
    cert_file: str = ""
    key_file: str = ""
    cert_data: bytes = b""
    key_data: bytes = b""


class _Doc:
    """A kubeconfig's current context: its cluster and user entries."""

    def __init__(self, kubeconfig: str) -> None:
        self.path = kubeconfig
        self.dir = os.path.dirname(os.path.abspath(kubeconfig))
        raw = self._read()
        if not isinstance(raw, dict):
            raise self.error("not a kubeconfig (expected a mapping)")
        current = raw.get("current-context")
        if not current or not isinstance(current, str):
            raise self.error("current-context is not set")
        context = self._entry(raw, "contexts", "context", current)
        cluster_name = context.get("cluster")
        if not cluster_name:
            raise self.error(f"contexts[{current}].context.cluster is not set")
        self.cluster = self._entry(raw, "clusters", "cluster", str(cluster_name))
        self.cluster_name = str(cluster_name)
        user_name = context.get("user")
        self.user_name = str(user_name or "")
        self.user = self._entry(raw, "users", "user", self.user_name) if user_name else {}

    def error(self, detail: str) -> ClusterError:
        return CredentialsError(f"cannot load kubeconfig {self.path}", detail)

    def _read(self) -> Any:
        try:
            with open(self.path, "rb") as f:
                text = f.read()
        except OSError as e:
            raise self.error(f"cannot read it: {e.strerror or e}") from None
        try:
            return json.loads(text)  # what most tools write is YAML; JSON is YAML too
        except (ValueError, RecursionError):
            pass
        import yaml

        # The pure-Python loader: LibYAML's recurses in C and crashes on deep nesting.
        try:
            return yaml.load(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            raise self.error(f"not valid YAML: {e}") from None
        except RecursionError:
            raise self.error("nested too deeply") from None

    def _entry(self, raw: dict[str, Any], section: str, key: str, name: str) -> dict[str, Any]:
        for item in raw.get(section) or []:
            if isinstance(item, dict) and item.get("name") == name:
                value = item.get(key) or {}
                if not isinstance(value, dict):
                    raise self.error(f"{section}[{name}].{key} is not a mapping")
                return value
        raise self.error(f"{section}[{name}] not found (named by the current context)")

    def file(self, where: str, entry: Mapping[str, Any], key: str) -> str:
        """The path at `key`, resolved against the kubeconfig's directory, checked readable."""
        value = entry.get(key)
        if not value:
            return ""
        resolved = os.path.join(self.dir, os.path.expanduser(str(value)))
        if not os.access(resolved, os.R_OK):
            raise self.error(f"{where}.{key}: cannot read {resolved}")
        return resolved

    def data(self, where: str, entry: Mapping[str, Any], key: str) -> bytes:
        value = entry.get(key)
        if not value:
            return b""
        import base64  # only a kubeconfig with inline data pays

        try:
            return base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise self.error(f"{where}.{key}: not valid base64") from None


def needs_full_client(kubeconfig: str) -> bool:
    """True when the kubeconfig's current user or cluster uses a form only the official
    client implements. An unreadable or broken kubeconfig is not: `load` reports it."""
    if not kubeconfig:
        return False
    try:
        doc = _Doc(kubeconfig)
    except ClusterError:
        return False
    return any(doc.user.get(k) for k in FULL_CLIENT_USER_KEYS) or any(
        doc.cluster.get(k) for k in FULL_CLIENT_CLUSTER_KEYS
    )


def load(
    kubeconfig: str,
    service_account: str = SERVICE_ACCOUNT,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """The endpoint of a kubeconfig, or of the in-cluster service account without one.
    Token files are read now: a projected service-account token rotates."""
    if not kubeconfig:
        return in_cluster(service_account, os.environ if environ is None else environ)
    doc = _Doc(kubeconfig)
    cl, cw = doc.cluster, f"clusters[{doc.cluster_name}].cluster"
    user, uw = doc.user, f"users[{doc.user_name}].user"
    server = str(cl.get("server") or "")
    if not server.startswith(("https://", "http://")):
        raise doc.error(f"{cw}.server: expected an https:// or http:// URL, got {server!r}")
    for key in (*FULL_CLIENT_USER_KEYS, *FULL_CLIENT_CLUSTER_KEYS):
        if user.get(key) or cl.get(key):
            raise doc.error(f"{key}: needs the kubernetes client (see docs/thin-mode.md)")
    try:
        token = checked_token(str(user.get("token") or ""))
    except ValueError as e:
        raise doc.error(f"{uw}.token: {e}") from None
    if token_file := doc.file(uw, user, "tokenFile"):
        token = _read_token(doc, f"{uw}.tokenFile", token_file)
    cert_file, key_file = doc.file(uw, user, "client-certificate"), doc.file(uw, user, "client-key")
    cert_data, key_data = (
        doc.data(uw, user, "client-certificate-data"),
        doc.data(uw, user, "client-key-data"),
    )
    if bool(cert_file or cert_data) != bool(key_file or key_data):
        raise doc.error(f"{uw}: a client certificate needs both the certificate and the key")
    return Endpoint(
        server=server.rstrip("/"),
        source=f"kubeconfig {kubeconfig}",
        ca_file=doc.file(cw, cl, "certificate-authority"),
        ca_data=doc.data(cw, cl, "certificate-authority-data"),
        insecure=cl.get("insecure-skip-tls-verify") in (True, "true"),
        token=token,
        token_file=token_file,
        cert_file=cert_file,
        key_file=key_file,
        cert_data=cert_data,
        key_data=key_data,
    )


def in_cluster(service_account: str, environ: Mapping[str, str]) -> Endpoint:
    """The pod's service account, as client-go's InClusterConfig reads it."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT")
    what = "cannot load in-cluster configuration"
    if not host or not port:
        raise CredentialsError(
            what, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
        )
    token_path = os.path.join(service_account, "token")
    try:
        token = read_token(token_path)
    except OSError as e:
        raise CredentialsError(what, f"cannot read {token_path}: {e.strerror or e}") from None
    except ValueError as e:  # not UTF-8, or no token
        raise CredentialsError(what, f"cannot read {token_path}: {e}") from None
    ca = os.path.join(service_account, "ca.crt")
    if not os.access(ca, os.R_OK):
        raise CredentialsError(what, f"cannot read {ca}")
    host = f"[{host}]" if ":" in host else host
    return Endpoint(
        f"https://{host}:{port}",
        "in-cluster configuration",
        ca_file=ca,
        token=token,
        token_file=token_path,
    )


def files(kubeconfig: str, service_account: str = SERVICE_ACCOUNT) -> tuple[str, ...]:
    """The files the credentials are read from: the kubeconfig and the files its current
    context names (the kubeconfig alone when it cannot be parsed), or the service
    account's token and CA without one."""
    if not kubeconfig:
        return (os.path.join(service_account, "token"), os.path.join(service_account, "ca.crt"))
    try:
        doc = _Doc(kubeconfig)
    except ClusterError:
        return (kubeconfig,)
    named = [
        os.path.join(doc.dir, os.path.expanduser(str(entry[key])))
        for entry, key in (
            (doc.user, "tokenFile"),
            (doc.user, "client-certificate"),
            (doc.user, "client-key"),
            (doc.cluster, "certificate-authority"),
        )
        if entry.get(key)
    ]
    return (kubeconfig, *named)


def _read_token(doc: _Doc, where: str, token_file: str) -> str:
    try:
        return read_token(token_file)
    except (OSError, ValueError) as e:
        raise doc.error(f"{where}: cannot read {token_file}: {e}") from None


def token_kubeconfig(server: str, ca_file: str, token_file: str) -> str:
    """A kubeconfig that reads its token from a file at each use (a rotated token needs no
    rewrite), as JSON, which every kubeconfig loader reads (JSON is YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": ca_file}}
        ],
        "users": [{"name": "multinet", "user": {"tokenFile": token_file}}],
        "contexts": [{"name": "multinet", "context": {"cluster": "local", "user": "multinet"}}],
        "current-context": "multinet",
    }
    return json.dumps(config, indent=2) + "\n"
