"""Malformed input: every case gets a specific CNI error JSON on stdout naming the culprit,
a non-zero exit, no traceback anywhere, and nothing created."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import CniRunner, Confs, LeakChecker, State

CONTAINER = "c1"


@pytest.fixture
def conf(confs: Confs, bridge_name: str) -> dict[str, Any]:
    """A valid configuration whose bridge does not exist until the bridge plugin runs."""
    return confs.multinet(
        [
            confs.bridge_net("cluster", bridge_name, confs.subnet()),
            confs.macvlan_net("sec", bridge_name, "10.99.0.5/24", "10.99.0.1"),
        ]
    )


@pytest.fixture
def nothing_created(leaks: LeakChecker, bridge_name: str, netns: str) -> Callable[[], None]:
    def check() -> None:
        assert not leaks.host_link_exists(bridge_name), "a delegate ran"
        assert list(leaks.state.ipam_dir.iterdir()) == []
        leaks.assert_clean()

    return check


def assert_error(rc: int, out: Any, code: int, *culprits: str) -> None:
    assert rc == 1
    assert isinstance(out, dict) and set(out) <= {"cniVersion", "code", "msg", "details"}
    assert out["code"] == code, out
    assert isinstance(out["cniVersion"], str)
    text = out["msg"] + " " + out.get("details", "")
    for culprit in culprits:
        assert culprit in text, f"{culprit!r} not named in {out}"


# -- stdin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdin", "code", "culprit"),
    [
        (b"{not json", 6, "not valid JSON"),
        (b"\xff\xfe", 6, "not valid JSON"),
        (b'[{"cniVersion": "1.0.0"}]', 6, "must be a JSON object"),
        (b'"1.0.0"', 6, "must be a JSON object"),
        (b"[" * 100000, 6, "nested deeper than 64 levels"),
        (b"\xef\xbb\xbf{}", 6, "byte order mark"),
        ('{"cniVersion": "1.0.0"}'.encode("utf-16"), 6, "not UTF-8"),
        ('{"cniVersion": "1.0.0"}'.encode("utf-32-le"), 6, "must be UTF-8"),
    ],
)
def test_undecodable_stdin(
    stdin: bytes,
    code: int,
    culprit: str,
    cni: CniRunner,
    netns: str,
    nothing_created: Callable[[], None],
) -> None:
    rc, out, _ = cni("ADD", None, stdin=stdin, netns=netns, container_id=CONTAINER)

    assert_error(rc, out, code, culprit)
    nothing_created()


PATH_KEYS = (
    "cniDir",
    "confDir",
    "binDir",
    "logFile",
    "kubeconfig",
    "manifests",
    "readinessindicatorfile",
    "daemonSocketPath",
)


def _without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


@pytest.mark.parametrize(
    ("change", "code", "culprits"),
    [
        pytest.param(
            lambda c: _without(c, "delegates"),
            7,
            ["delegates", "clusterNetwork"],
            id="no-delegates",
        ),
        pytest.param(lambda c: c | {"delegates": []}, 7, ["delegates"], id="empty-delegates"),
        pytest.param(
            lambda c: c | {"delegates": {"name": "x"}},
            7,
            ["delegates", "array"],
            id="delegates-obj",
        ),
        pytest.param(
            lambda c: c | {"delegates": ["bridge"]}, 7, ["delegates[0]"], id="delegate-not-object"
        ),
        pytest.param(lambda c: c | {"logLevel": 3}, 7, ["logLevel", "3"], id="logLevel"),
        pytest.param(lambda c: c | {"cniDir": 5}, 7, ["cniDir"], id="cniDir-type"),
        pytest.param(
            lambda c: c | {"delegateTimeout": 0}, 7, ["delegateTimeout"], id="timeout-zero"
        ),
        pytest.param(lambda c: _without(c, "name"), 7, ["name"], id="no-name"),
        pytest.param(lambda c: c | {"cniVersion": "0.3.2"}, 1, ["0.3.2"], id="version-0.3.2"),
        pytest.param(lambda c: c | {"cniVersion": "9.9.9"}, 1, ["9.9.9"], id="version-9.9.9"),
        pytest.param(lambda c: c | {"cniVersion": "one"}, 7, ["one"], id="version-garbage"),
        pytest.param(lambda c: c | {"cniVersion": 1}, 7, ["cniVersion"], id="version-number"),
        # A missing cniVersion is read as 0.1.0 (libcni, Multus): valid. CHECK needs 0.4.0.
        # json.dumps writes these as NaN, Infinity, -Infinity: not JSON (libcni refuses them).
        *[
            pytest.param(lambda c, v=v: c | {"mtu": v}, 6, [f"{t} is not JSON"], id=t)
            for v, t in ((math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"))
        ],
        # A path key with a NUL or a lone surrogate (written as \u0000, \udcff, \ud800).
        *[
            pytest.param(lambda c, k=key, b=bad: c | {k: f"/tmp/x{b}y"}, 7, [key], id=key + hex)
            for key in PATH_KEYS
            for bad, hex in (("\x00", "-nul"), ("\udcff", "-udcff"), ("\ud800", "-ud800"))
        ],
    ],
)
def test_invalid_netconf(
    change: Callable[[dict[str, Any]], dict[str, Any]],
    code: int,
    culprits: list[str],
    conf: dict[str, Any],
    cni: CniRunner,
    netns: str,
    nothing_created: Callable[[], None],
) -> None:
    rc, out, _ = cni("ADD", change(conf), netns=netns, container_id=CONTAINER)

    assert_error(rc, out, code, *culprits)
    nothing_created()


@pytest.mark.parametrize("plugin_type", ["../bridge", "/usr/lib/cni/bridge", "..", "a/b", ""])
@pytest.mark.parametrize("where", ["single", "conflist"])
def test_delegate_type_is_not_a_file_name(
    plugin_type: str,
    where: str,
    conf: dict[str, Any],
    cni: CniRunner,
    netns: str,
    nothing_created: Callable[[], None],
) -> None:
    if where == "single":
        conf["delegates"][1]["type"] = plugin_type
        culprit = "delegates[1]"
    else:
        conf["delegates"][0]["plugins"][0]["type"] = plugin_type
        culprit = "delegates[0]: plugins[0]"

    rc, out, _ = cni("ADD", conf, netns=netns, container_id=CONTAINER)

    assert_error(rc, out, 7, culprit, repr(plugin_type) if plugin_type else "non-empty")
    nothing_created()


# -- environment -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "culprits"),
    [
        pytest.param({"CNI_COMMAND": None}, ["CNI_COMMAND", "not set"], id="no-command"),
        pytest.param({"CNI_COMMAND": "add"}, ["CNI_COMMAND", "'add'"], id="lowercase-command"),
        pytest.param({"CNI_COMMAND": "BOOM"}, ["CNI_COMMAND", "'BOOM'"], id="bogus-command"),
        pytest.param({"CNI_CONTAINERID": None}, ["CNI_CONTAINERID"], id="no-containerid"),
        pytest.param({"CNI_CONTAINERID": "-c1"}, ["CNI_CONTAINERID", "'-c1'"], id="cid-dash"),
        pytest.param({"CNI_CONTAINERID": "a/b"}, ["CNI_CONTAINERID", "'a/b'"], id="cid-slash"),
        pytest.param({"CNI_CONTAINERID": "a b"}, ["CNI_CONTAINERID", "'a b'"], id="cid-space"),
        pytest.param({"CNI_IFNAME": None}, ["CNI_IFNAME"], id="no-ifname"),
        pytest.param(
            {"CNI_IFNAME": "eth0123456789abc"}, ["CNI_IFNAME", "longer than 15"], id="long-ifname"
        ),
        pytest.param({"CNI_IFNAME": "eth/0"}, ["CNI_IFNAME", '"/"'], id="ifname-slash"),
        pytest.param({"CNI_IFNAME": "eth:0"}, ["CNI_IFNAME", '":"'], id="ifname-colon"),
        pytest.param({"CNI_IFNAME": ".."}, ["CNI_IFNAME", "'..'"], id="ifname-dotdot"),
        pytest.param({"CNI_IFNAME": "eth 0"}, ["CNI_IFNAME", "whitespace"], id="ifname-space"),
        pytest.param({"CNI_NETNS": None}, ["CNI_NETNS", "ADD"], id="no-netns"),
        pytest.param({"CNI_NETNS": ""}, ["CNI_NETNS", "ADD"], id="empty-netns"),
        pytest.param({"CNI_ARGS": "IgnoreUnknown"}, ["CNI_ARGS", "'IgnoreUnknown'"], id="args"),
        pytest.param({"CNI_ARGS": "A=1;=2"}, ["CNI_ARGS", "'=2'"], id="args-no-key"),
        # A byte that is not UTF-8 (subprocess writes "\udcff" as the byte 0xff).
        *[
            pytest.param({key: value}, [key, "not UTF-8"], id=f"{key}-not-utf8")
            for key, value in (
                ("CNI_CONTAINERID", "c\udcff"),
                ("CNI_NETNS", "/var/run/netns/\udcff"),
                ("CNI_IFNAME", "eth\udcff"),
                ("CNI_ARGS", "IgnoreUnknown=1\udcff"),
                ("CNI_PATH", "/usr/lib/cni:/x\udcff"),
            )
        ],
    ],
)
def test_invalid_environment(
    env: Mapping[str, str | None],
    culprits: list[str],
    conf: dict[str, Any],
    cni: CniRunner,
    netns: str,
    nothing_created: Callable[[], None],
) -> None:
    rc, out, _ = cni("ADD", conf, netns=netns, container_id=CONTAINER, extra_env=env)

    assert_error(rc, out, 4, *culprits)
    nothing_created()


def test_netns_that_does_not_exist(
    conf: dict[str, Any],
    cni: CniRunner,
    netns: str,
    token: str,
    nothing_created: Callable[[], None],
) -> None:
    missing = f"/var/run/netns/mni-{token}-missing"

    rc, out, _ = cni("ADD", conf, netns=missing, container_id=CONTAINER)

    assert_error(rc, out, 5, missing)
    nothing_created()


def test_version(cni: CniRunner) -> None:
    rc, out, _ = cni("VERSION", {"cniVersion": "0.4.0"}, ifname="")

    assert rc == 0
    assert out == {
        "cniVersion": "0.4.0",
        "supportedVersions": ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }


# -- misbehaving delegates -------------------------------------------------------------
# The cluster network (bridge) is added first and rolled back; the bridge plugin keeps its
# bridge on DEL, so these check for leaks rather than for "nothing created".


def scripted_secondary(conf: dict[str, Any], state: State, token: str, name: str, body: str) -> str:
    """The second delegate becomes network `name`: a /bin/sh plugin `<name>-<token>` that
    reads its stdin, then runs `body`. Returns the plugin's name."""
    plugin = f"{name}-{token}"
    state.script(plugin, f"cat >/dev/null\n{body}")
    conf["delegates"][1] = {"cniVersion": "1.0.0", "name": name, "type": plugin}
    return plugin


@pytest.mark.parametrize(
    ("body", "culprits"),
    [
        pytest.param(
            "echo 'this is { not json'", ["invalid JSON", "this is { not json"], id="garbage"
        ),
        pytest.param(
            "echo 'segfault, sort of'\nexit 3",
            ["exit status 3", "segfault, sort of"],
            id="exit-without-cni-error",
        ),
    ],
)
def test_misbehaving_delegate(
    body: str,
    culprits: list[str],
    conf: dict[str, Any],
    cni: CniRunner,
    state: State,
    netns: str,
    token: str,
    leaks: LeakChecker,
) -> None:
    plugin = scripted_secondary(conf, state, token, "junky", body)

    rc, out, _ = cni("ADD", conf, netns=netns, container_id=CONTAINER)

    assert_error(rc, out, 100, "'junky'", plugin, *culprits)
    leaks.assert_clean()
    assert cni("DEL", conf, netns=netns, container_id=CONTAINER).rc == 0
    leaks.assert_clean()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('echo $$ >> "$PIDS"\nexec sleep 30', id="plugin-hangs"),
        pytest.param('sleep 30 &\necho $! >> "$PIDS"\nwait', id="plugin-child-hangs"),
    ],
)
def test_delegate_that_hangs_is_killed(
    body: str,
    conf: dict[str, Any],
    cni: CniRunner,
    state: State,
    netns: str,
    token: str,
    leaks: LeakChecker,
) -> None:
    pids = state.root / "pids"
    plugin = scripted_secondary(conf, state, token, "stuck", f"PIDS={pids}\n{body}")
    conf["delegateTimeout"] = 1

    started = time.monotonic()
    rc, out, _ = cni("ADD", conf, netns=netns, container_id=CONTAINER, timeout=25)
    elapsed = time.monotonic() - started

    assert_error(rc, out, 5, "'stuck'", plugin, "timed out after 1s")
    assert elapsed < 8, f"took {elapsed:.1f}s"
    hung = [int(p) for p in pids.read_text().split()]
    assert hung, "the plugin never ran"
    assert [p for p in hung if _alive(p)] == [], "hung delegate processes survive"
    leaks.assert_clean()
    assert os.path.exists(netns)


def test_chatty_delegate_del_and_check_succeed(
    confs: Confs,
    bridge: str,
    cni: CniRunner,
    state: State,
    netns: str,
    token: str,
    leaks: LeakChecker,
) -> None:
    """What a delegate prints on a successful DEL or CHECK is ignored, as libcni does: it
    must not fail the pod's DEL (nor make retryDeleteOnError retry it forever)."""
    plugin = f"chatty-{token}"
    state.script(
        plugin,
        """
out=$(/usr/lib/cni/bridge)
rc=$?
if [ "$CNI_COMMAND" = ADD ]; then printf '%s' "$out"; else echo "$CNI_COMMAND done, bye"; fi
exit $rc
""",
    )
    delegate = confs.bridge_net("cluster", bridge, confs.subnet())
    delegate["plugins"][0]["type"] = plugin
    conf = confs.multinet([delegate], retryDeleteOnError=True)

    assert cni("ADD", conf, netns=netns, container_id=CONTAINER).rc == 0
    assert cni("CHECK", conf, netns=netns, container_id=CONTAINER)[:2] == (0, None)
    assert cni("DEL", conf, netns=netns, container_id=CONTAINER)[:2] == (0, None)
    leaks.assert_clean()


# -- CNI_ARGS with an empty element ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "position"),
    [("IgnoreUnknown=1;;K8S_POD_NAME=p", 2), ("IgnoreUnknown=1;", 2), (";", 1)],
)
def test_cni_args_with_an_empty_element_is_refused_on_add_but_del_works(
    args: str,
    position: int,
    confs: Confs,
    bridge: str,
    cni: CniRunner,
    netns: str,
    leaks: LeakChecker,
) -> None:
    conf = confs.multinet([confs.bridge_net("cluster", bridge, confs.subnet())])

    rc, out, _ = cni("ADD", conf, netns=netns, container_id=CONTAINER, args=args)
    assert_error(rc, out, 4, "CNI_ARGS", f"element {position} is empty")
    leaks.assert_clean()

    # The pod was added with clean CNI_ARGS; its runtime's DEL carries the stray ';'.
    assert cni("ADD", conf, netns=netns, container_id=CONTAINER, args="IgnoreUnknown=1").rc == 0
    rc, out, err = cni("DEL", conf, netns=netns, container_id=CONTAINER, args=args)
    assert (rc, out) == (0, None), out
    assert f"CNI_ARGS: element {position} is empty (stray ';')" in err and "ignored on DEL" in err
    leaks.assert_clean()
