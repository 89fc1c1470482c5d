"""The schemas' good examples are good for the real plugins too: every case of
tests/unit/schemas/cases.py whose type this kernel can run (`REAL`) goes through
Debian's reference plugins (ADD, CHECK, DEL) in a fresh network namespace, and leaves
nothing behind. A schema that accepted what a plugin refuses would fail here."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from multinet.cni import chain
from multinet.cni.exec import Invocation
from multinet.cni.result import Result
from tests.unit.schemas.cases import GOOD, REAL

if TYPE_CHECKING:
    from tests.integration.conftest import LeakChecker, NetInfo, State

pytestmark = pytest.mark.root

IFNAME = "net1"
# Never on a real run: isGateway gives the test's bridge an address on the host and
# turns forwarding on (the suite must leave net.ipv4.ip_forward as it found it).
HOST_CHANGING = {"bridge-gateway"}
CASES = [(name, config) for name, config in GOOD if name in REAL - HOST_CHANGING]
# Debian's bridge 1.1.1 CHECK execs an IPAM plugin even when the config has none ("no
# plugin name provided"): a plugin defect, not a config one; ADD and DEL still run.
NO_CHECK = {"bridge-no-ipam"}


def concrete(config: dict[str, Any], bridge: str, state: State, octet: int) -> dict[str, Any]:
    """The case with this test's bridge, dataDirs and a free 10.<octet>.x.0 range."""
    text = json.dumps(config)
    text = text.replace("MNBRIDGE", bridge).replace("/tmp/MNDATA", str(state.ipam_dir))
    text = text.replace("/tmp/MNTUNING", str(state.tuning_dir))
    text = text.replace("10.199.", f"10.{octet}.").replace("IFNAME", IFNAME)
    out: dict[str, Any] = json.loads(text)
    return out


def test_every_runnable_type_has_a_real_run() -> None:
    assert {name for name, _ in CASES} == REAL - HOST_CHANGING


@pytest.mark.parametrize(("name", "config"), CASES, ids=[n for n, _ in CASES])
def test_good_config_is_accepted_by_the_real_plugin(
    name: str,
    config: dict[str, Any],
    bridge: str,
    netns: str,
    state: State,
    net: NetInfo,
    leaks: LeakChecker,
) -> None:
    raw = concrete(config, bridge, state, 100 + secrets.randbelow(100))
    network = chain.load(raw, where=name)
    inv = Invocation(
        container_id=f"schema-{secrets.token_hex(4)}",
        netns=netns,
        ifname=IFNAME,
        path=("/usr/lib/cni",),
    )
    runtime: dict[str, Any] = {}
    result = chain.add(network, inv, runtime)
    try:
        Result.from_dict(result)  # a result multinet can read
        assert IFNAME in net.links(netns)
        if name not in NO_CHECK:
            chain.check(network, inv, runtime, result)
    finally:
        chain.delete(network, inv, runtime, result)
    leaks.assert_clean()
