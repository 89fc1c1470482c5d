"""multinetd's resident size is mostly the modules it imports (docs/performance.md): what
its start-up path must not import with a default configuration and a plain kubeconfig
(or the service account). In a bare interpreter (-I -S), so that nothing site or an
editable install's hook imports hides an import of ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import multinet

ROOT = str(Path(multinet.__file__).resolve().parent.parent)

# multinetd's start-up: its configuration read, its caches built and started (their
# first list refused: nothing listens on port 1), as `multinetd --config` does.
START = """
import json, sys, time
sys.path.insert(0, {root!r})
from multinet.daemon import config
from multinet.daemon.main import shared_cluster
conf = config.load({{"kubeconfig": {kubeconfig!r}, "cniDir": {cni_dir!r}, "nodeName": "n1"}}, {{}})
cache = shared_cluster(conf, {{}})
cache.start(wait=0.5)
cache.close()
print(json.dumps(sorted(sys.modules)))
"""
KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "c",
    "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
}
NEVER = [
    "kubernetes",  # ~47 MiB with its models: the kubeconfig forms only it implements
    "urllib3",
    "yaml",  # a kubeconfig in YAML only (kubeconfig.py)
    "jsonschema",  # schema checks: multinetctl and the webhook
    "pyroute2",  # the engine's netlink: what a delegate-less node never needs
    "grpc",  # PodResources: only once a NAD names a device resource
    "google.protobuf",
]


def test_the_daemons_start_up_imports_none_of_the_heavy_clients(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(KUBECONFIG))
    code = START.format(root=ROOT, kubeconfig=str(kubeconfig), cni_dir=str(tmp_path / "cni"))
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert {"multinet.daemon.lifecycle", "multinet.cluster.cache"} <= loaded
    assert sorted(m for m in NEVER if m in loaded) == []
