"""The API test server's request log, cut around each CNI call.

Requests on a call's path are those it makes itself: not the informers' lists
and watches (long-lived, the daemon's own), not events (best effort; the daemon
posts them from a background thread after answering, so they are counted per
namespace once a run has settled).
"""

from __future__ import annotations

import collections
import time

from tests.support.kubeapi import KubeAPIServer


def on_call_path(method: str, path: str) -> bool:
    """Made by the CNI call itself: not an informer's list or watch, not an event."""
    resource = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    informer = "watch=" in path or (
        method == "GET" and resource in ("pods", "network-attachment-definitions")
    )
    return not informer and resource != "events"


def kind_of(method: str, path: str) -> str:
    if "/network-attachment-definitions/" in path:
        return f"{method} NAD"
    if path.endswith("/status") and "/pods/" in path:
        return f"{method} pods/status"
    if "/pods/" in path:
        return f"{method} pod"
    return f"{method} {path}"


class RequestLog:
    """Cuts the server's request log around one call."""

    def __init__(self, server: KubeAPIServer) -> None:
        self.server = server
        self.start = 0

    def mark(self) -> None:
        self.start = len(self.server.requests)

    def since_mark(self) -> list[tuple[str, str]]:
        return [r for r in self.server.requests[self.start :] if on_call_path(*r)]


def events_by_namespace(
    server: KubeAPIServer, settle: float = 1.0, limit: float = 15.0
) -> collections.Counter[str]:
    """Event POSTs per namespace, once no new one arrived for `settle` seconds."""

    def count() -> collections.Counter[str]:
        c: collections.Counter[str] = collections.Counter()
        for method, path in server.requests:
            if method == "POST" and path.rstrip("/").endswith("/events"):
                c[path.split("/namespaces/")[1].split("/")[0]] += 1
        return c

    deadline = time.monotonic() + limit
    last = count()
    while time.monotonic() < deadline:
        time.sleep(settle)
        now = count()
        if now == last:
            break
        last = now
    return last
