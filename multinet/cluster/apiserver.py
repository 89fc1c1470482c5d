"""The API server as a Cluster, its client picked and built on first use.

A DEL the journal answers reads no kubeconfig (nor PyYAML for one) and imports no
client: thin mode builds one `ApiServer` per call, and only an ADD's planning opens it.
Events are held until `send_events` (or `close`): thin mode's `main` sends them from a
detached process once the answer is written, off the pod's path.
"""

from __future__ import annotations

import contextlib

from multinet.cni.errors import CredentialsError, TryAgainLater

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

if TYPE_CHECKING:  # cluster.base's dataclasses: not imported by a DEL
    from multinet.cluster.api import ApiCluster
    from multinet.cluster.base import NAD, Pod


class ApiServer:
    """The API server as a Cluster, its client (`api_cluster`) built on first use.

    `retry_credentials`: the shim's in-process fallback, run while multinetd is away (a
    restart, an upgrade). Credentials that do not work there (the daemon's host token not
    written yet, or its pod gone: a 401) are the daemon's to renew, so the answer is code
    11 and the kubelet retries, never a permanent error."""

    def __init__(self, kubeconfig: str, state_dir: str, *, retry_credentials: bool = False) -> None:
        self.kubeconfig, self.state_dir = kubeconfig, state_dir
        self.retry_credentials = retry_credentials
        self._client: ApiCluster | None = None
        self.events: list[tuple[Pod, str, str, bool]] = []

    @contextlib.contextmanager
    def _credentials(self) -> Iterator[None]:
        try:
            yield
        except CredentialsError as e:
            if not self.retry_credentials:
                raise
            raise TryAgainLater(
                "multinetd is not answering and the in-process fallback has no working "
                f"credentials for the API server (try again when multinetd is back): {e.msg}",
                e.details,
            ) from None

    @property
    def client(self) -> ApiCluster:
        if self._client is None:
            self._client = api_cluster(self.kubeconfig, self.state_dir)
        return self._client

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        with self._credentials():
            return self.client.get_pod(namespace, name, uid)

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        with self._credentials():
            return self.client.get_nad(namespace, name)

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        with self._credentials():
            self.client.set_network_status(pod, status)

    def emit_event(self, pod: Pod, reason: str, message: str, warning: bool = False) -> None:
        """Held until `send_events`: best effort, and never worth a pod's wait."""
        self.events.append((pod, reason, message, warning))

    def send_events(self) -> None:
        """Post the events held, in order (each best effort: see ApiCluster.emit_event)."""
        events, self.events = self.events, []
        for event in events:
            self.client.emit_event(*event)

    def close(self) -> None:
        """Send the events still held, then close the client's connection, if a client
        was built."""
        try:
            self.send_events()
        finally:
            if self._client is not None:
                self._client.close()


def api_cluster(kubeconfig: str, state_dir: str) -> ApiCluster:
    """The API server through the standard-library client (`cluster.rest`, ~20 ms of
    imports), or through the official client (~600 ms) for the kubeconfig forms only it
    implements: exec plugins, auth-provider, basic auth, proxy-url, tls-server-name."""
    from multinet.cluster.kubeconfig import needs_full_client

    if needs_full_client(kubeconfig):
        from multinet.cluster.kube import KubeCluster  # the fallback: lazily, see pyproject

        return KubeCluster(kubeconfig, state_dir=state_dir)
    from multinet.cluster.rest import RestCluster

    return RestCluster(kubeconfig, state_dir=state_dir)
