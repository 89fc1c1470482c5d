"""The daemon's own service-account credentials, kept on the host for the shim's fallback.

When multinetd does not answer (a restart, an upgrade, a crash), multinet-shim runs the
request in-process on the host, where no service account is mounted: it reads the API
server with the generated conflist's `kubeconfig`. This keeps that kubeconfig working:
the daemon copies its projected token (which the kubelet rewrites before it expires) and
the cluster's CA beside it, and the kubeconfig names them with `tokenFile` and
`certificate-authority`, so that each fallback reads the newest token. The files are
written atomically (a hidden temporary file, then a rename), 0600 but the CA, and only
when their content changes; they are kept when the daemon stops: that is when they are
needed. The server is the daemon's own (KUBERNETES_SERVICE_HOST/PORT): multinetd runs
on the host's network, so the address it reaches is the host's to reach too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from multinet.cluster import kubeconfig
from multinet.cni.errors import CNIError
from multinet.daemon.confgen import write_atomic

log = logging.getLogger("multinet.daemon")

TOKEN_NAME = "multinetd.token"
CA_NAME = "multinetd-ca.crt"
POLL_INTERVAL = 10.0  # seconds; the kubelet renews a token with a fifth of its life left


class HostCredentials:
    """Writes `path` (a kubeconfig) and the token and CA it names, in its directory."""

    def __init__(
        self,
        path: str,
        environ: Mapping[str, str],
        service_account: str = kubeconfig.SERVICE_ACCOUNT,
    ) -> None:
        self.path = path
        self.dir = os.path.dirname(path)
        self.token_path = os.path.join(self.dir, TOKEN_NAME)
        self.ca_path = os.path.join(self.dir, CA_NAME)
        self.environ = environ
        self.service_account = service_account
        self.problem = "not written yet"

    def sync(self) -> bool:
        """One pass: the files brought up to date with the service account. True when they
        are; otherwise the last ones written stay and `problem` says why."""
        try:
            endpoint = kubeconfig.in_cluster(self.service_account, self.environ)
            with open(endpoint.ca_file, "rb") as f:
                ca = f.read()
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            changed = _put(self.token_path, endpoint.token.encode(), 0o600)
            changed |= _put(self.ca_path, ca, 0o644)
            text = kubeconfig.token_kubeconfig(endpoint.server, self.ca_path, self.token_path)
            changed |= _put(self.path, text.encode(), 0o600)  # last: names files that exist
        except (CNIError, OSError) as e:
            problem = f"cannot write the fallback's credentials {self.path}: {e}"
            if problem != self.problem:
                log.error("%s", problem)
            self.problem = problem
            return False
        if changed:
            log.info("wrote the fallback's credentials %s", self.path)
        self.problem = ""
        return True

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set (a thread's target)."""
        while not stop.wait(POLL_INTERVAL):
            try:
                self.sync()
            except Exception:  # the loop must outlive anything a file system can throw
                log.exception("writing the fallback's credentials failed")


def _put(path: str, data: bytes, mode: int) -> bool:
    """Write `path` when its content (or mode) differs; True when written."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            if f.read() == data and st.st_mode & 0o777 == mode:
                return False
    except OSError:
        pass
    write_atomic(path, data, mode)
    return True
