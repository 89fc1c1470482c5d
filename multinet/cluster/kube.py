"""The Kubernetes API server as a Cluster, through the official `kubernetes` client.

The kubeconfig forms the standard-library client (`rest.py`) leaves to it need it:
exec credential plugins, auth-provider, basic auth, proxy-url, tls-server-name (in
thin mode and for the daemon's watch-backed caches, `shared.watched_api`). Responses are
read as raw bytes through the client's low-level `call_api`: multinet needs a few
fields, not the client's model objects. Paths, error mapping and retries are
`api.ApiCluster`'s; this module only carries the requests.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import Any

from multinet.cluster.api import TIMEOUT, ApiCluster, HTTPFailure
from multinet.cni.errors import ClusterError


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


class KubeCluster(ApiCluster):
    def __init__(self, kubeconfig: str, state_dir: str, client: Any = None) -> None:
        super().__init__(kubeconfig, state_dir)
        self._client = client

    @functools.cached_property
    def api_client(self) -> Any:
        # Built on first use: a DEL answered by the journal never needs the API
        # server, and must not fail because the kubeconfig is unreadable.
        return self._client or api_client(self.kubeconfig)

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        # ApiException: only status 0 reaches `_call` (`_request` turns the others into
        # HTTPFailure), the client's wrapping of urllib3's SSLError.
        return (ApiException, HTTPError, OSError)

    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = ""
    ) -> bytes:
        """One request through the client's low-level API, read to its end (which hands
        the connection back to the pool). The generated CoreV1Api module alone takes
        ~0.7 s to import (kubernetes 37), paid by every thin-mode ADD that used it."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, payload, post = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self.api_client.call_api(
                method,
                url,
                header_params=headers,
                body=payload,
                post_params=post,
                _request_timeout=TIMEOUT,
            )
        except ApiException as e:
            if e.status:
                raise HTTPFailure(e.status, e.reason or "", e.body or "") from None
            raise  # status 0: a TLS failure, wrapped by the client (a transport error)
        data: bytes = resp.read()
        if not 200 <= resp.status <= 299:
            raise HTTPFailure(resp.status, resp.reason or "", data)
        return data

    def list_json(self, path: str) -> bytes:
        return self._request("GET", path)

    def watch_lines(self, path: str, read_timeout: float) -> Generator[bytes, None, None]:
        """A watch's JSON lines as they come (cache.WatchedApi); HTTPFailure when the
        status is not 2xx."""
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _, _ = self.api_client.param_serialize(
            method="GET",
            resource_path=path,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api_client.call_api(
                method, url, header_params=headers, _request_timeout=(TIMEOUT[0], read_timeout)
            )
        except ApiException as e:
            if e.status:
                raise HTTPFailure(e.status, e.reason or "", e.body or "") from None
            raise
        raw = resp.response
        try:
            if not 200 <= resp.status <= 299:
                raise HTTPFailure(resp.status, resp.reason or "", resp.read())
            buf = b""
            for chunk in raw.stream(4096, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield line
            if buf.strip():
                yield buf
        finally:
            raw.release_conn()
