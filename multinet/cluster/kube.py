"""The Kubernetes API server as a Cluster, through the official `kubernetes` client.

The kubeconfig forms the standard-library client (`rest.py`) leaves to it need it:
exec credential plugins, auth-provider, basic auth, proxy-url, tls-server-name (in
thin mode and for the daemon's watch-backed caches, `shared.watched_api`). Responses are
read as raw bytes through the client's low-level `call_api`: multinet needs a few
fields, not the client's model objects. Paths, error mapping and retries are
`api.ApiCluster`'s; this module only carries the requests, with the newest credentials:
the token trimmed (the client sends a file's newline, which no header may carry), the
client built again when a file its credentials came from changed, and after a 401 when
they changed (`credentials`).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

from multinet.cluster import kubeconfig
from multinet.cluster.api import TIMEOUT, ApiCluster, HTTPFailure
from multinet.cluster.credentials import Files
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
            built = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            built = client.ApiClient(configuration)
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
    _trim_tokens(configuration)
    return built


def _trim_tokens(configuration: Any) -> None:
    """Trim the token as client-go does (the client sends a token file's newline, which
    no header may carry), now and after each refresh by the client's own hook."""
    trimmed = _Trimmed(configuration.refresh_api_key_hook)
    trimmed(configuration)
    configuration.refresh_api_key_hook = trimmed


class _Trimmed:
    """The client's refresh hook (the in-cluster loader reads its file again every
    minute; a kubeconfig's runs an expired exec plugin again), then the token trimmed.
    The kubeconfig's hook installs itself again each time it runs: it is wrapped again."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, conf: Any) -> None:
        if self.inner is not None:
            self.inner(conf)
        if conf.refresh_api_key_hook is not self:
            self.inner, conf.refresh_api_key_hook = conf.refresh_api_key_hook, self
        for name, value in list(conf.api_key.items()):
            if isinstance(value, str):
                conf.api_key[name] = value.strip()


def _authorization(client: Any) -> Any:
    return client.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")


class KubeCluster(ApiCluster):
    def __init__(self, kubeconfig: str, state_dir: str, client: Any = None) -> None:
        super().__init__(kubeconfig, state_dir)
        self._given = client
        self._lock = threading.Lock()  # multinetd's threads share one
        self._built: tuple[Any, Files] | None = None
        self._builds = 0

    @property
    def api_client(self) -> Any:
        """Built on first use: a DEL answered by the journal never needs the API server,
        and must not fail because the kubeconfig is unreadable. Built again when a file
        its credentials came from changed (`credentials`: the kubeconfig, its token file,
        client certificate and key, CA)."""
        if self._given is not None:
            return self._given
        with self._lock:
            if self._built is None or self._built[1].changed():
                self._built = self._build()
                self._builds += 1
            return self._built[0]

    def _build(self) -> tuple[Any, Files]:
        files = Files(*kubeconfig.files(self.kubeconfig))  # stamped before the client reads
        return api_client(self.kubeconfig), files

    def _version(self) -> object:
        self.api_client  # noqa: B018  # built (again) first: the request's
        return self._builds

    def _renew(self, version: object) -> bool:
        if self._given is not None:
            return False
        with self._lock:
            if self._builds != version:
                return True  # built again since the request was sent
            try:
                fresh = self._build()
            except ClusterError:
                return False  # the 401 stands; the next request reports the kubeconfig
            old = self._built
            if (
                old is not None
                and old[1].seen == fresh[1].seen
                and _authorization(old[0]) == _authorization(fresh[0])
            ):
                return False
            self._built = fresh
            self._builds += 1
        return True

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        # ApiException: only status 0 reaches `_call` (`_request` turns the others into
        # HTTPFailure), the client's wrapping of urllib3's SSLError.
        return (ApiException, HTTPError, OSError)

    def _send(self, path: str, timeout: Any, method: str = "GET", **params: Any) -> Any:
        """One request through the client's low-level API: its response, the body not
        yet read. HTTPFailure for a status the client raises on."""
        from kubernetes.client.exceptions import ApiException

        client = self.api_client
        headers = {"Accept": "application/json"}
        if content_type := params.pop("content_type", ""):
            headers["Content-Type"] = content_type
        method, url, headers, payload, post = client.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            auth_settings=["BearerToken"],
            **params,
        )
        try:
            return client.call_api(
                method,
                url,
                header_params=headers,
                body=payload,
                post_params=post,
                _request_timeout=timeout,
            )
        except ApiException as e:
            if e.status:
                raise HTTPFailure(e.status, e.reason or "", e.body or "") from None
            raise  # status 0: a TLS failure, wrapped by the client (a transport error)
        except ValueError:  # http.client refused a header: the credentials' (a token)
            where = (
                f"kubeconfig {self.kubeconfig}" if self.kubeconfig else "in-cluster configuration"
            )
            raise ClusterError(
                f"cannot send a request with the credentials of the {where}",
                "an HTTP header cannot carry them (its value not shown: a secret)",
            ) from None

    def _request(
        self, method: str, path: str, *, body: Any = None, content_type: str = ""
    ) -> bytes:
        """One request, read to its end (which hands the connection back to the pool).
        The generated CoreV1Api module alone takes ~0.7 s to import (kubernetes 37), paid
        by every thin-mode ADD that used it."""
        resp = self._send(path, TIMEOUT, method, body=body, content_type=content_type)
        data: bytes = resp.read()
        if not 200 <= resp.status <= 299:
            raise HTTPFailure(resp.status, resp.reason or "", data)
        return data

    def list_json(self, path: str) -> bytes:
        return self._authorized(lambda: self._request("GET", path))

    def watch_lines(self, path: str, read_timeout: float) -> Generator[bytes, None, None]:
        """A watch's JSON lines as they come (cache.WatchedApi); HTTPFailure when the
        status is not 2xx (after a 401, opened once more if the credentials changed)."""
        resp = self._authorized(lambda: self._watch(path, read_timeout))
        raw = resp.response
        try:
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

    def _watch(self, path: str, read_timeout: float) -> Any:
        resp = self._send(path, (TIMEOUT[0], read_timeout))
        if not 200 <= resp.status <= 299:
            try:
                raise HTTPFailure(resp.status, resp.reason or "", resp.read())
            finally:
                resp.response.release_conn()
        return resp
