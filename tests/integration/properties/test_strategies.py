"""The strategies' own promise (strategies.py): no mutated document aims a plugin at the
host. Read as the reference plugins read JSON (Go: keys matched case-insensitively, the
last one wins, null leaves a field unset), every host-local ipam of a mutated NAD config or
netconf keeps a dataDir inside the test's directories and every bridge plugin a bridge
name. Pure computation: no plugin runs, so it needs no root."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.integration.conftest import Confs, State
from tests.integration.properties import strategies as s
from tests.integration.properties.harness import prop, static_netconf
from tests.integration.properties.test_cluster_inputs import NAD_DOCS
from tests.integration.properties.test_netconf import DIRECTORIES, DOCUMENTS

ROOT = Path("/tmp/mni-state-strategies")
STATE = State(ROOT, ROOT / "cni", ROOT / "ipam", ROOT / "tuning", ROOT / "bin")
NAD = Confs(STATE).bridge_net("net-a", "mnb0", ipaddress.IPv4Network("10.9.8.0/24"), routes=[])
NETCONF = static_netconf(Confs(STATE), STATE, ("mnb0", "mnb1"))
M = s.Mutation


def go_field(obj: dict[str, Any], name: str) -> Any:
    """The value Go's decoder puts in the field `name` of a struct: the last key that
    matches it case-insensitively and is not null (None: the field keeps its default)."""
    found = None
    for key, value in obj.items():
        if key.casefold() == name.casefold() and value is not None:
            found = value
    return found


def objects(doc: Any) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        yield doc
        for value in doc.values():
            yield from objects(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from objects(value)


def inside(path: str) -> bool:
    return os.path.normpath(path).startswith(f"{ROOT}/")


def aimed_at_the_host(doc: Any) -> list[str]:
    """How a plugin (or multinet) given `doc` would use the host's defaults or write
    outside the test's directories."""
    found = []
    for obj in objects(doc):
        ipam = go_field(obj, "ipam")
        if isinstance(ipam, dict) and go_field(ipam, "type") == "host-local":
            data_dir = go_field(ipam, "dataDir")
            if data_dir is None:
                found.append(f"host-local without a dataDir (its default) in {obj}")
            elif isinstance(data_dir, str) and not inside(data_dir):
                found.append(f"host-local's dataDir {data_dir!r} is not the test's")
        if go_field(obj, "type") == "bridge" and go_field(obj, "bridge") is None:
            found.append(f"a bridge plugin without a bridge name (its cni0) in {obj}")
        for key, value in obj.items():
            if key in DIRECTORIES and isinstance(value, str) and not inside(value):
                found.append(f"{key} {value!r} is not the test's")
    return found


def test_the_checker_sees_what_used_to_leak() -> None:
    """Each of these mutations aims a plugin at the host (the first was the leak to
    /var/lib/cni/networks/net-a): the check above is no check that cannot fail."""
    leaks = [
        M("set", ("plugins", 0, "ipam", "dataDir"), None),
        M("set", ("plugins", 0, "bridge"), None),
        M("set", ("plugins", 0, "ipam", "DataDir"), ""),
        M("suffix", ("plugins", 0, "ipam", "dataDir"), "/../../.."),
    ]
    for mutation in leaks:
        assert aimed_at_the_host(s.apply(NAD, [mutation])), mutation
    assert aimed_at_the_host(NAD) == []
    assert aimed_at_the_host(NETCONF) == []


def test_a_mutation_below_a_replaced_value_is_skipped() -> None:
    """An ipam set to {} and then given a type and ranges would be a host-local without
    the test's dataDir: the later mutations are skipped."""
    ipam = ("plugins", 0, "ipam")
    doc = s.apply(
        NAD,
        [M("set", ipam, {}), M("set", (*ipam, "type"), "host-local"), M("set", (*ipam, "x"), 1)],
    )
    assert doc["plugins"][0]["ipam"] == {}
    assert (
        s.apply(NAD, [M("set", (*ipam, "dataDir"), 1), M("suffix", (*ipam, "dataDir"), "x")])[
            "plugins"
        ][0]["ipam"]["dataDir"]
        == 1
    )


@prop(ci=400, doc=(NAD_DOCS, []))
def test_no_mutated_nad_config_aims_a_plugin_at_the_host(doc: s.Document) -> None:
    assert aimed_at_the_host(s.apply(NAD, doc.muts)) == []


@prop(ci=400, doc=(DOCUMENTS, []))
def test_no_mutated_netconf_aims_a_plugin_at_the_host(doc: s.Document) -> None:
    assert aimed_at_the_host(s.apply(NETCONF, doc.muts)) == []
