"""Surface 1: the stdin netconf. A mutated multinet configuration (static delegates of the
reference plugins: bridge + host-local) gets one CNI error or a valid result, never a
traceback, and leaves nothing behind; DEL after a valid ADD succeeds whatever the
netconf it is given says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import strategies as st

from multinet.cni import strictjson
from tests.integration.conftest import State
from tests.integration.properties import strategies as s
from tests.integration.properties.harness import (
    DelFailed,
    World,
    netconf_shape,
    prop,
)

pytestmark = pytest.mark.root

# Keys naming host objects: a mutation may break them, never aim them elsewhere.
PROTECTED = frozenset({"bridge", "master"})
DIRECTORIES = frozenset(
    {"cniDir", "binDir", "confDir", "dataDir", "logFile", "readinessindicatorfile"}
)
EXTRA_KEYS = (
    "delegateTimeout",
    "logLevel",
    "logFile",
    "logToStderr",
    "clusterNetwork",
    "defaultNetworks",
    "manifests",
    "kubeconfig",
    "parallelAttach",
    "retryDeleteOnError",
    "capabilities",
    "runtimeConfig",
    "prevResult",
    "args",
    "systemNamespaces",
    "globalNamespaces",
    "namespaceIsolation",
    "readinessindicatorfile",
    "daemonSocketPath",
    "cniVersions",
    "disableCheck",
    "plugins",
)
TIMEOUTS = st.sampled_from(
    [3e6, s.Raw("1e400"), s.Raw("NaN"), s.Raw("-1e400"), "NaN", -1, 0, 10**30, True, 1e-9]
)


SHAPE = netconf_shape()
MUTATIONS = s.mutations(
    SHAPE,
    protected=PROTECTED,
    directories=DIRECTORIES,
    extra_keys=EXTRA_KEYS,
    special=[
        (("delegateTimeout",), TIMEOUTS),
        (("cniVersion",), st.sampled_from(["0.3.1", "0.4.0", "1.1.0", "0.2.0"])),
    ],
    # Never "bridge": run where a bridge key is missing (as an IPAM, say), the bridge
    # plugin makes its default cni0 on the host.
    allowed_plugins=frozenset({"host-local"}),
)
DOCUMENTS = s.documents(MUTATIONS)

M = s.Mutation
E = s.Encoded
PINNED = [
    s.Document((M("set", ("delegateTimeout",), s.Raw("NaN")),)),
    s.Document((M("set", ("delegateTimeout",), s.Raw("1e400")),)),
    s.Document((M("set", ("delegateTimeout",), 3e6),)),
    s.Document(raw=b"[" * s.DEEP),
    s.Document((), E("utf-8-sig")),
    s.Document((), E("utf-16")),
    s.Document(
        (M("set", ("delegates", 1, "plugins", 0, "ipam", "ranges", 0, 0, "subnet"), s.Raw("NaN")),)
    ),
    s.Document((M("suffix", ("cniDir",), "\x00"),)),
    s.Document((M("suffix", ("cniDir",), "\udcff"),)),
    s.Document((M("suffix", ("confDir",), "\x00"),)),
    s.Document((M("suffix", ("logFile",), "\x00"),)),
    s.Document((M("set", ("logLevel",), "loud"),)),
    s.Document((M("delete", ("cniVersion",)),)),
    s.Document((M("set", ("delegates", 1, "name"), "cluster"),)),
]


@prop(ci=40, doc=(DOCUMENTS, PINNED))
def test_mutated_netconf_add_then_del(
    world: World, netconf: dict[str, Any], doc: s.Document
) -> None:
    """In-process, and for some examples through the real executable as well (no
    traceback on its stderr either)."""
    for run in world.runners(doc):
        world.begin()
        world.add_then_del(world.env("ADD"), doc.render(netconf), run)


@prop(ci=30, doc=(DOCUMENTS, PINNED))
def test_del_after_valid_add_succeeds_whatever_the_netconf(
    world: World, netconf: dict[str, Any], doc: s.Document
) -> None:
    """Nothing blocks a pod's deletion: DEL exits 0 with any netconf once a valid ADD
    happened (the journal knows what to undo); a valid DEL then leaves nothing. A stdin
    that is not even a JSON object holds no settings to go by: its DEL is a decode
    failure (code 6), like any command's, never anything else."""
    world.begin()
    valid = json.dumps(netconf).encode()
    added = world.run(world.env("ADD"), valid)
    assert added.rc == 0, f"the valid ADD failed: {added}"
    stdin = doc.render(netconf)
    deleted = world.run(world.env("DEL"), stdin)
    undecodable = not _json_object(stdin) and deleted.code == 6
    if deleted.rc != 0 and not undecodable:
        raise DelFailed(f"DEL with a mutated netconf failed: {deleted.error}")
    assert world.run(world.env("DEL"), valid).rc == 0
    world.assert_clean("after DEL")


@prop(
    ci=5,
    plugin=(
        st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).filter(
            lambda p: p not in s.REFERENCE_PLUGINS
        ),
        ["missing-plugin", "bridge-not-here"],
    ),
)
def test_status_with_a_missing_cluster_network_plugin_is_50(
    world: World, state: State, plugin: str
) -> None:
    """STATUS when the cluster network's plugin is not installed: code 50 (not available),
    whatever the plugin's name."""
    world.begin()
    conf_dir = state.root / "netd"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "10-cluster.conf").write_text(
        json.dumps({"cniVersion": "1.1.0", "name": "cluster", "type": plugin})
    )
    conf = {
        "cniVersion": "1.1.0",
        "name": "multinet-status",
        "type": "multinet",
        "clusterNetwork": "cluster",
        "confDir": str(conf_dir),
        "cniDir": str(state.cni_dir),
        "binDir": str(state.bin_dir),
    }
    reply = world.run(
        {"CNI_COMMAND": "STATUS", "CNI_PATH": "/usr/lib/cni"}, json.dumps(conf).encode()
    )
    assert reply.code == 50, f"STATUS with the cluster plugin {plugin!r} missing: {reply}"


def _json_object(stdin: bytes) -> bool:
    """Whether DEL can read `stdin` as a JSON object at all (it reads NaN, Infinity)."""
    try:
        return isinstance(strictjson.loads(stdin, constants=True), dict)
    except ValueError:
        return False
