"""The watch-backed cache (multinet/cluster/cache.py) against the API test server:
it follows ADDED/MODIFIED/DELETED, keeps only this node's pods, relists after a
410 Gone, survives the API server going away, and falls back to a GET on a miss."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from multinet.cluster import cache as cache_module
from multinet.cluster import shared
from multinet.cluster.cache import CachedCluster
from multinet.cluster.kube import KubeCluster
from multinet.cluster.shared import SharedRestCluster, WatchedApi
from multinet.cni.errors import ClusterError
from tests.support.kubeapi import KubeAPIServer

NODE = "node-a"


def nad(name: str, namespace: str = "default", bridge: str = "br0") -> dict[str, object]:
    config = {"cniVersion": "1.0.0", "name": name, "type": "bridge", "bridge": bridge}
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"config": json.dumps(config)},
    }


def pod(name: str, node: str = NODE) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]},
    }


def eventually(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.fixture(params=["rest", "kube"])
def cache(
    kubeapi: KubeAPIServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[CachedCluster]:
    """The cache through the daemon's client (the standard library's), and through the
    official one it keeps for the kubeconfig forms only that one implements."""
    kubeconfig = kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig"))
    api: WatchedApi = (
        SharedRestCluster(kubeconfig, str(tmp_path))
        if request.param == "rest"
        else KubeCluster(kubeconfig, state_dir=str(tmp_path))
    )
    cached = CachedCluster(api, NODE)
    try:
        yield cached
    finally:
        cached.close()


def test_lists_then_follows_watch_events(kubeapi: KubeAPIServer, cache: CachedCluster) -> None:
    kubeapi.add_nad(nad("first"))
    kubeapi.add_pod(pod("mine"))
    kubeapi.add_pod(pod("elsewhere", node="node-b"))
    assert cache.start(wait=10)
    assert cache.sizes() == {"pods": 1, "network_attachment_definitions": 1}
    assert cache.get_pod("default", "mine") is not None

    kubeapi.add_nad(nad("second", bridge="br1"))
    eventually(lambda: cache.nads.get("default", "second") is not None)
    kubeapi.delete_nad("default", "first")
    eventually(lambda: cache.nads.get("default", "first") is None)
    kubeapi.patch_pod("default", "mine", {"metadata": {"annotations": {"k": "v"}}})
    eventually(lambda: dict(cache.pods.get("default", "mine").annotations) == {"k": "v"})

    kubeapi.reset_requests()
    second = cache.get_nad("default", "second")
    assert second is not None and json.loads(second.config)["bridge"] == "br1"
    assert kubeapi.requests == []  # answered from the cache


def test_relists_after_410_gone(kubeapi: KubeAPIServer, cache: CachedCluster) -> None:
    kubeapi.add_nad(nad("before"))
    assert cache.start(wait=10)
    assert cache.nads.relists == 1
    kubeapi.wait_for_watchers(2, timeout=10)
    kubeapi.set_down(True)  # cut the watches...
    kubeapi.add_nad(nad("while-down"))  # ...change something they will have missed...
    kubeapi.compact()  # ...and forget the history: resuming from the old version is 410
    kubeapi.set_down(False)
    eventually(lambda: cache.nads.relists >= 2)
    eventually(lambda: cache.nads.get("default", "while-down") is not None)
    assert cache.nads.get("default", "before") is not None


def test_miss_falls_back_to_the_api(kubeapi: KubeAPIServer, cache: CachedCluster) -> None:
    assert cache.start(wait=10)
    kubeapi.wait_for_watchers(2, timeout=10)
    cache.stop.set()  # the informers stop applying events...
    kubeapi.set_down(True)  # ...and lose their watches
    kubeapi.set_down(False)
    kubeapi.add_pod(pod("late"))  # so only a GET can find this pod
    kubeapi.reset_requests()
    got = cache.get_pod("default", "late")
    assert got is not None and got.node_name == NODE
    assert ("GET", "/api/v1/namespaces/default/pods/late") in kubeapi.requests
    assert cache.get_nad("default", "absent") is None


def test_a_cached_pod_of_another_uid_is_read_afresh(
    kubeapi: KubeAPIServer, cache: CachedCluster
) -> None:
    """A StatefulSet recreates a pod under the same name at once: until the watch says
    so, the cache holds the old pod. A caller that names the new UID gets the new pod
    (one GET, which also refreshes the cache), not a 'pod was recreated' error."""
    old = pod("web-0")
    kubeapi.add_pod(old)
    assert cache.start(wait=10)
    kubeapi.wait_for_watchers(2, timeout=10)
    cache.stop.set()  # the watch lags from here on: the cache keeps the old pod
    kubeapi.set_down(True)
    kubeapi.set_down(False)
    kubeapi.delete_pod("default", "web-0")
    new = pod("web-0")
    kubeapi.add_pod(new)
    old_uid, new_uid = old["metadata"]["uid"], new["metadata"]["uid"]  # type: ignore[index]
    kubeapi.reset_requests()

    def gets() -> list[tuple[str, str]]:  # not an informer's parting re-watch
        return [r for r in kubeapi.requests if "watch=" not in r[1]]

    stale = cache.get_pod("default", "web-0")  # no UID to check: the cached copy
    assert stale is not None and stale.uid == old_uid
    assert gets() == []

    fresh = cache.get_pod("default", "web-0", uid=new_uid)
    assert fresh is not None and fresh.uid == new_uid
    assert gets() == [("GET", "/api/v1/namespaces/default/pods/web-0")]

    kubeapi.reset_requests()
    again = cache.get_pod("default", "web-0", uid=new_uid)
    assert again is not None and again.uid == new_uid
    assert gets() == []  # the cache now holds the new pod


def test_a_malformed_object_is_skipped_and_does_not_stop_the_watch(
    kubeapi: KubeAPIServer, cache: CachedCluster
) -> None:
    bad_pod = pod("bad-listed")
    bad_pod["metadata"]["annotations"] = {"k8s.v1.cni.cncf.io/networks": 3}  # type: ignore[index]
    kubeapi.add_pod(bad_pod)
    kubeapi.add_pod(pod("good"))
    kubeapi.add_nad({"metadata": {"name": "bad-spec", "namespace": "default"}, "spec": "x"})
    kubeapi.add_nad(nad("fine"))
    assert cache.start(wait=10)  # the list synced without the malformed objects
    assert cache.sizes() == {"pods": 1, "network_attachment_definitions": 1}

    kubeapi.add_nad(
        {"metadata": {"name": "bad-config", "namespace": "default"}, "spec": {"config": 42}}
    )
    kubeapi.add_nad(nad("after"))  # the watch goes on past the malformed event
    eventually(lambda: cache.nads.get("default", "after") is not None)
    assert cache.nads.get("default", "bad-config") is None
    assert cache.nads.relists == 1


def test_a_malformed_object_from_the_get_fallback_is_a_cluster_error(
    kubeapi: KubeAPIServer, cache: CachedCluster
) -> None:
    bad = pod("bad")
    bad["metadata"]["uid"] = 7  # type: ignore[index]
    kubeapi.add_pod(bad)
    with pytest.raises(ClusterError) as e:
        cache.get_pod("default", "bad")  # not started: a miss, answered by a GET
    assert e.value.code == 101
    assert "Pod default/bad metadata.uid must be a string" in e.value.msg


def rotating(kubeapi: KubeAPIServer, tmp_path: Path) -> tuple[CachedCluster, Path]:
    """A synced cache whose kubeconfig names a token file (a projected token's form)."""
    token_file = tmp_path / "token"
    token_file.write_text(kubeapi.token)
    kubeconfig = Path(kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig")))
    doc = json.loads(kubeconfig.read_text())
    doc["users"][0]["user"] = {"tokenFile": str(token_file)}
    kubeconfig.write_text(json.dumps(doc))
    cached = CachedCluster(SharedRestCluster(str(kubeconfig), str(tmp_path)), NODE)
    assert cached.start(wait=10)
    kubeapi.wait_for_watchers(2, timeout=10)
    return cached, token_file


def test_a_rotated_token_is_read_again_after_a_401(kubeapi: KubeAPIServer, tmp_path: Path) -> None:
    """A projected service-account token rotates under a running daemon: a request
    refused 401 reads the token file again and is sent once more."""
    cached, token_file = rotating(kubeapi, tmp_path)
    try:
        kubeapi.token = "rotated-token"
        token_file.write_text("rotated-token")
        kubeapi.add_pod(pod("late"))
        late = cached.api.get_pod("default", "late")
        assert late is not None and late.name == "late"
    finally:
        cached.close()


def test_a_watch_refused_401_reads_the_token_again(kubeapi: KubeAPIServer, tmp_path: Path) -> None:
    cached, token_file = rotating(kubeapi, tmp_path)
    try:
        kubeapi.token = "rotated-token"
        token_file.write_text("rotated-token")
        kubeapi.set_down(True)  # the watches reconnect: refused (401), then read it again
        kubeapi.set_down(False)
        kubeapi.add_nad(nad("after-rotation"))
        eventually(lambda: cached.nads.get("default", "after-rotation") is not None)
    finally:
        cached.close()


def test_a_refused_list_leaves_the_cache_unsynced_and_a_get_refused(
    kubeapi: KubeAPIServer, tmp_path: Path
) -> None:
    """RBAC refusing the list (here: a token the server does not know) leaves the cache
    unsynced, retrying; a GET through the cache is a ClusterError naming the refusal."""
    kubeconfig = Path(kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig")))
    kubeapi.token = "another-token"
    cached = CachedCluster(SharedRestCluster(str(kubeconfig), str(tmp_path)), NODE)
    try:
        assert not cached.start(wait=1.5)
        assert not cached.synced()
        with pytest.raises(ClusterError, match="refused access") as info:
            cached.get_pod("default", "any")
        assert info.value.msg.startswith(
            "the daemon's cache of pods is not synced yet (list answered 401 Unauthorized): "
            "get pod default/any: API server refused access (401 Unauthorized)"
        )
    finally:
        cached.close()


def test_a_get_fallback_of_a_synced_cache_says_nothing_of_it(
    kubeapi: KubeAPIServer, tmp_path: Path
) -> None:
    kubeconfig = kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig"))
    cached = CachedCluster(SharedRestCluster(kubeconfig, str(tmp_path)), NODE)
    try:
        assert cached.start(wait=10)
        kubeapi.fail_next(1, 403, path_contains="/network-attachment-definitions/x")
        with pytest.raises(ClusterError) as info:
            cached.get_nad("default", "x")
        assert info.value.msg.startswith("get NetworkAttachmentDefinition default/x: ")
    finally:
        cached.close()


def test_a_list_comes_in_pages(
    kubeapi: KubeAPIServer, cache: CachedCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "LIST_PAGE", 2)
    for i in range(5):
        kubeapi.add_nad(nad(f"n{i}"))
    assert cache.start(wait=10)
    assert len(cache.nads) == 5
    collection = "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions?"
    pages = [p for _, p in kubeapi.requests if p.startswith(collection) and "watch=" not in p]
    assert len(pages) == 3 and all("limit=2" in p for p in pages)
    assert "continue=" not in pages[0] and all("continue=" in p for p in pages[1:])


def test_a_watch_event_too_long_for_an_object_is_a_relist(
    kubeapi: KubeAPIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(shared, "MAX_EVENT", 4096)
    api = SharedRestCluster(kubeapi.write_kubeconfig(str(tmp_path / "kubeconfig")), str(tmp_path))
    cache = CachedCluster(api, NODE)
    try:
        assert cache.start(wait=10)
        big = nad("big")
        big["metadata"] = {"name": "big", "namespace": "default", "annotations": {"x": "y" * 8192}}
        kubeapi.add_nad(big)
        eventually(lambda: cache.nads.relists == 2)  # the list has no such bound
        assert cache.nads.get("default", "big") is not None
        assert "watch sent a line larger than 4096 bytes: relisting" in caplog.text
        kubeapi.add_nad(nad("small"))  # and the watch goes on
        eventually(lambda: cache.nads.get("default", "small") is not None)
    finally:
        cache.close()
