"""Surface 2: the CNI environment. CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
CNI_ARGS and CNI_PATH mutated (bytes that are not UTF-8 reach the executable as such,
through os.environb) with a valid netconf: one CNI error or a valid result, nothing left,
and DEL of a valid ADD succeeds whatever else the environment says."""

from __future__ import annotations

import json
import os
import string
from typing import Any

import pytest
from hypothesis import strategies as st

from tests.integration.properties import strategies as s
from tests.integration.properties.harness import DelFailed, World, prop

pytestmark = pytest.mark.root

KEYS = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")
COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "add", "", " ADD", "ADD\n")
ID_CHARS = string.ascii_letters + string.digits + "_.-"


def env_safe(value: str) -> bool:
    """A value an environment can hold that aims at nothing of the host's: no NUL,
    encodable as bytes, no path to a namespace of the host's."""
    if "\x00" in value or value.startswith(("/proc", "/var/run/netns", "/run")):
        return False
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        return False
    return True


def env_strings() -> st.SearchStrategy[str]:
    return s.nasty_strings().map(lambda v: v.value if isinstance(v, s.Big) else v).filter(env_safe)


def cni_args() -> st.SearchStrategy[str]:
    pair = st.one_of(
        st.sampled_from(
            [
                "IgnoreUnknown=1",
                "IgnoreUnknown=true",
                "IgnoreUnknown=0",
                "K8S_POD_NAMESPACE=default",
                "K8S_POD_NAME=p",
                "K8S_POD_UID=",
                "K8S_POD_INFRA_CONTAINER_ID=c1",
                "FOO=bar",
                "=",
                "A==",
                "A",
            ]
        ),
        st.builds(lambda k, v: f"{k}={v}", env_strings(), env_strings()),
    )
    return st.builds(
        lambda items, tail: ";".join(items) + tail,
        st.lists(pair, max_size=5),
        st.sampled_from(["", ";", ";;"]),
    )


def container_ids() -> st.SearchStrategy[str]:
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(string.ascii_letters + string.digits),
        st.text(ID_CHARS, max_size=999),
    )


VALUES = {
    "CNI_COMMAND": st.sampled_from(COMMANDS) | env_strings(),
    "CNI_CONTAINERID": container_ids() | env_strings(),
    "CNI_NETNS": env_strings(),
    "CNI_IFNAME": env_strings()
    | st.sampled_from(["eth\udcff", "\udcff", "a" * 15, "a" * 16, "lo", "net1"]),
    "CNI_ARGS": cni_args() | env_strings(),
    "CNI_PATH": st.sampled_from(
        ["", ":", "/usr/lib/cni:", ":/usr/lib/cni", "/nonexistent", "/usr/lib/cni/bridge"]
    )
    | env_strings(),
}
EnvChange = tuple[tuple[str, str | None], ...]  # (key, value); None unsets the key


def env_changes(keys: tuple[str, ...] = KEYS) -> st.SearchStrategy[EnvChange]:
    one = st.one_of(
        *(st.tuples(st.just(k), VALUES[k]) for k in keys),
        st.tuples(st.sampled_from(keys), st.none()),
    )
    return st.lists(one, min_size=1, max_size=3, unique_by=lambda kv: kv[0]).map(tuple)


def changed(env: dict[str, str], change: EnvChange) -> dict[str, str]:
    out = dict(env)
    for key, value in change:
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


PINNED: list[EnvChange] = [
    (("CNI_IFNAME", "eth\udcff"),),
    (("CNI_ARGS", "IgnoreUnknown=1;"),),
    (("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p;;"),),
    (("CNI_CONTAINERID", "c" * 250),),
    (("CNI_CONTAINERID", "c" * 1000),),
    (("CNI_NETNS", "/nonexistent/netns"),),
    (("CNI_PATH", ""),),
]


@prop(ci=40, change=(env_changes(), PINNED))
def test_mutated_environment_add_then_del(
    world: World, netconf: dict[str, Any], change: EnvChange
) -> None:
    """In-process, and for some examples through the real executable, where bytes that are
    not UTF-8 arrive as bytes (os.environb) and stderr is checked for tracebacks too."""
    stdin = json.dumps(netconf).encode()
    for run in world.runners(change):
        world.begin()
        world.add_then_del(changed(world.env("ADD"), change), stdin, run)


@prop(ci=10, cid=(container_ids(), ["c" * 250, "c" * 1000, "a", "A.-_" * 60]))
def test_container_ids_add_check_del(world: World, netconf: dict[str, Any], cid: str) -> None:
    """Any container ID the spec allows (1-1000 chars): ADD, CHECK and DEL succeed, or ADD
    fails cleanly; either way nothing is left after DEL."""
    world.begin()
    stdin = json.dumps(netconf).encode()
    added = world.run(world.env("ADD", cid), stdin)
    if added.rc == 0:
        checked = world.run(world.env("CHECK", cid), stdin)
        assert checked.rc == 0, f"CHECK after a successful ADD failed: {checked}"
    else:
        world.assert_clean(f"after the failed ADD ({added.error})")
    deleted = world.run(world.env("DEL", cid), stdin)
    if deleted.rc != 0:
        raise DelFailed(f"DEL of container {cid[:20]}...({len(cid)}) failed: {deleted.error}")
    world.assert_clean("after DEL")


@prop(
    ci=20,
    change=(
        env_changes(("CNI_NETNS", "CNI_ARGS", "CNI_PATH")),
        [
            (("CNI_ARGS", "IgnoreUnknown=1;"),),
            (("CNI_ARGS", "A"),),
            (("CNI_NETNS", ""),),
            (("CNI_PATH", ""),),
        ],
    ),
)
def test_del_after_valid_add_succeeds_whatever_the_environment(
    world: World, netconf: dict[str, Any], change: EnvChange
) -> None:
    """The environment still names the container (CNI_CONTAINERID, CNI_IFNAME) but anything
    else may be wrong: DEL exits 0; a valid DEL then leaves nothing."""
    world.begin()
    stdin = json.dumps(netconf).encode()
    added = world.run(world.env("ADD"), stdin)
    assert added.rc == 0, f"the valid ADD failed: {added}"
    deleted = world.run(changed(world.env("DEL"), change), stdin)
    if deleted.rc != 0:
        raise DelFailed(f"DEL with a mutated environment failed: {deleted.error}")
    assert world.run(world.env("DEL"), stdin).rc == 0
    world.assert_clean("after DEL")
