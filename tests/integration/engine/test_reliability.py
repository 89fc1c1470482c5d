"""What a failure, a bad setting or an odd container ID must never do: leave an interface
or an address behind, or block the pod's deletion. The real `multinet` executable with
Debian's reference plugins in real network namespaces."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import CniRunner, Confs, LeakChecker, NetInfo, State

pytestmark = pytest.mark.root

# An IPAM that fails on every command, as the dhcp IPAM does when its daemon is down.
FAILING_IPAM = """
cat >/dev/null
echo '{"cniVersion": "1.0.0", "code": 11, "msg": "IPAM daemon unreachable"}'
exit 1
"""


def test_macvlan_whose_ipam_fails_leaves_no_link_and_del_succeeds(
    cni: CniRunner,
    confs: Confs,
    state: State,
    netns: str,
    bridge: str,
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    """The reference macvlan keeps its link when its IPAM fails, on ADD and on DEL."""
    state.script("failing-ipam", FAILING_IPAM)
    macvlan = {
        "cniVersion": "1.0.0",
        "name": "lab",
        "type": "macvlan",
        "master": bridge,
        "mode": "bridge",
        "ipam": {"type": "failing-ipam"},
    }
    conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet()), macvlan])

    add = cni("ADD", conf, netns=netns, container_id="leaky")
    assert add.rc == 1 and add.out["code"] == 11, add.out
    assert "network 'lab' (net1)" in add.out["msg"]
    leaks.assert_clean()  # the leak guard removed the macvlan its failed rollback kept
    assert cni("DEL", conf, netns=netns, container_id="leaky").rc == 0
    leaks.assert_clean()


def test_a_rollback_that_cannot_release_an_added_network_keeps_its_journal(
    cni: CniRunner, confs: Confs, state: State, netns: str, bridge: str, leaks: LeakChecker
) -> None:
    """The first secondary was added; its IPAM is gone when the second fails: the journal
    stays so that the runtime's DEL (which always follows a failed ADD) retries it."""
    flag = state.root / "ipam-down"
    state.script(
        "flaky-ipam",
        f"""
        if [ -e {flag} ]; then cat >/dev/null
          echo '{{"cniVersion": "1.0.0", "code": 11, "msg": "IPAM daemon unreachable"}}'
          exit 1
        fi
        exec /usr/lib/cni/static
        """,
    )
    state.script(
        "breaks", f'cat >/dev/null; touch {flag}; echo \'{{"code": 7, "msg": "no"}}\'; exit 1'
    )
    lab = {
        "cniVersion": "1.0.0",
        "name": "lab",
        "type": "macvlan",
        "master": bridge,
        "mode": "bridge",
        "ipam": {"type": "flaky-ipam", "addresses": [{"address": "10.99.0.5/24"}]},
    }
    broken = {"cniVersion": "1.0.0", "name": "broken", "type": "breaks"}
    conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet()), lab, broken])
    add = cni("ADD", conf, netns=netns, container_id="half")
    assert add.rc == 1 and "network 'broken' (net2)" in add.out["msg"], add.out
    assert [f for f in leaks.journal_files() if f.endswith(".json")] == ["half@eth0.json"]
    flag.unlink()  # the IPAM is back
    assert cni("DEL", conf, netns=netns, container_id="half").rc == 0
    leaks.assert_clean()


@pytest.mark.parametrize("length", [250, 1000])
def test_a_long_container_id_is_added_checked_and_deleted(
    length: int, cni: CniRunner, confs: Confs, netns: str, bridge: str, leaks: LeakChecker
) -> None:
    """The spec's container ID rule has no length limit."""
    cid = "c" + "0123456789abcdef" * (length // 16) + "x" * (length % 16 - 1)
    assert len(cid) == length
    conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet())])
    assert cni("ADD", conf, netns=netns, container_id=cid).rc == 0
    assert cni("CHECK", conf, netns=netns, container_id=cid).rc == 0
    assert cni("DEL", conf, netns=netns, container_id=cid).rc == 0
    leaks.assert_clean()


@pytest.mark.parametrize(
    "insane",
    [
        {"delegateTimeout": 3e6},  # beyond 2**31 ms
        {"delegateTimeout": 1e400},  # JSON for infinity
        {"delegateTimeout": -1},
        {"logLevel": "loud", "logToStderr": "yes"},
        {"cniVersion": "0.2.0"},
        {"parallelAttach": "sometimes", "retryDeleteOnError": 1},
    ],
    ids=["timeout-3e6", "timeout-1e400", "timeout-negative", "logging", "version", "flags"],
)
def test_del_succeeds_whatever_the_settings_say(
    insane: dict[str, Any],
    cni: CniRunner,
    confs: Confs,
    netns: str,
    bridge: str,
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    conf = confs.multinet(
        [
            confs.bridge_net("cluster", bridge, confs.subnet()),
            confs.bridge_net("second", bridge, confs.subnet(), routes=[]),
        ]
    )
    assert cni("ADD", conf, netns=netns, container_id="sane").rc == 0
    bad = {**conf, **insane}
    add = cni("ADD", bad, netns=netns, container_id="other")
    # Refused up front (1e400 is Infinity, which is not JSON: a decode failure).
    assert add.rc == 1 and add.out["code"] in (1, 6, 7), add.out
    assert set(net.links(netns)) == {"eth0", "net1"}
    assert cni("DEL", bad, netns=netns, container_id="sane").rc == 0
    leaks.assert_clean()


def test_del_without_cni_version_succeeds(
    cni: CniRunner, confs: Confs, netns: str, bridge: str, leaks: LeakChecker
) -> None:
    conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet())])
    assert cni("ADD", conf, netns=netns, container_id="nov").rc == 0
    versionless = {k: v for k, v in conf.items() if k != "cniVersion"}
    assert cni("DEL", versionless, netns=netns, container_id="nov").rc == 0
    leaks.assert_clean()


def test_status_with_cluster_network_whose_plugin_is_missing(
    cni: CniRunner, confs: Confs, state: State, bridge: str, token: str
) -> None:
    """STATUS checks every network ADD would run: a clusterNetwork file's plugins too."""
    primary = state.root / "10-primary.conflist"
    cluster = confs.bridge_net("primary", bridge, confs.subnet())
    primary.write_text(json.dumps(cluster))
    conf = confs.multinet([], version="1.1.0", clusterNetwork=str(primary))
    del conf["delegates"]
    assert cni("STATUS", conf, ifname="").rc == 0

    cluster["plugins"][0]["type"] = f"nope-{token}"
    primary.write_text(json.dumps(cluster))
    rc, out, _ = cni("STATUS", conf, ifname="")
    assert rc == 1 and out["code"] == 50, out
    assert "'primary'" in out["msg"] and f"nope-{token}" in out["msg"]

    primary.unlink()
    rc, out, _ = cni("STATUS", conf, ifname="")
    assert rc == 1 and out["code"] == 50 and str(primary) in out["msg"], out


def test_del_succeeds_when_cni_dir_cannot_hold_a_journal(
    cni: CniRunner, confs: Confs, state: State, netns: str, bridge: str, leaks: LeakChecker
) -> None:
    """A cniDir whose name is too long for the filesystem holds no journal (found by the
    property tests): ADD is refused, DEL goes by the configuration and succeeds."""
    conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet())])
    bad = {**conf, "cniDir": str(state.root / ("c" * 300))}
    add = cni("ADD", bad, netns=netns, container_id="far")
    assert add.rc == 1 and add.out["code"] == 5 and "journal" in add.out["msg"], add.out
    assert cni("DEL", bad, netns=netns, container_id="far").rc == 0
    leaks.assert_clean()
