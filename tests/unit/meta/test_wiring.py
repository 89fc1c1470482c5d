"""meta.wiring and cluster.apiserver: which API client thin mode uses, built only when
first needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multinet.cluster.apiserver import ApiServer, api_cluster
from multinet.cluster.kube import KubeCluster
from multinet.cluster.rest import RestCluster
from multinet.cni.errors import ClusterError
from multinet.config import netconf
from multinet.meta.wiring import cluster_for


def kubeconfig(tmp_path: Path, user: dict[str, Any]) -> str:
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(doc))
    return str(path)


def conf(tmp_path: Path, **keys: Any) -> netconf.NetConf:
    raw = {"cniVersion": "1.0.0", "name": "n", "type": "multinet", "cniDir": str(tmp_path)}
    return netconf.load(raw | keys)


def test_kubeconfig_or_cluster_network_means_the_api_server(tmp_path: Path) -> None:
    absent = str(tmp_path / "absent")
    cluster = cluster_for(conf(tmp_path, kubeconfig=absent, clusterNetwork="c"))
    assert isinstance(cluster, ApiServer)
    cluster.close()  # nothing built, nothing read: a DEL from the journal stops here
    assert cluster._client is None
    with pytest.raises(ClusterError, match="cannot load kubeconfig"):  # on first use
        cluster.get_pod("ns", "p")
    assert isinstance(cluster_for(conf(tmp_path, clusterNetwork="c")), ApiServer)
    manifests = tmp_path / "m"
    manifests.mkdir()
    with_manifests = conf(tmp_path, manifests=str(manifests), clusterNetwork="c")
    assert not isinstance(cluster_for(with_manifests), ApiServer)


@pytest.mark.parametrize(
    ("user", "client"),
    [
        ({"token": "t"}, RestCluster),
        ({"exec": {"command": "x", "apiVersion": "client.authentication.k8s.io/v1"}}, KubeCluster),
        ({"username": "a", "password": "b"}, KubeCluster),
    ],
)
def test_the_client_follows_the_kubeconfig(
    tmp_path: Path, user: dict[str, Any], client: type
) -> None:
    path = kubeconfig(tmp_path, user)
    assert type(api_cluster(path, str(tmp_path))) is client
    server = ApiServer(path, str(tmp_path))
    assert type(server.client) is client and server.client is server.client
