"""Which networks a running pod gains and loses (networks.dynamic.diff): identity by
namespace/NAD and interface, auto-named interfaces kept while their element stays."""

from __future__ import annotations

from multinet.engine.journal import ADDED, REMOVING, Entry
from multinet.engine.plan import ANNOTATION, CLUSTER, DEFAULT_NETWORKS, DELEGATE, Passengers
from multinet.networks.dynamic import diff, next_names
from multinet.networks.selection import parse_networks


def entry(
    name: str, ifname: str, origin: str = ANNOTATION, default: bool = False, state: str = ADDED
) -> Entry:
    return Entry(
        name=name, ifname=ifname, config={}, k8s=Passengers(origin), default=default, state=state
    )


SANDBOX = [
    entry("kube-system/cluster", "eth0", CLUSTER, default=True),
    entry("kube-system/monitor", "net1", DEFAULT_NETWORKS),
    entry("pods/blue", "net2"),
    entry("pods/blue", "net3"),
    entry("pods/green", "data0"),
]


def changes(
    annotation: str, entries: list[Entry] = SANDBOX
) -> tuple[list[str], list[str], list[str]]:
    d = diff(entries, parse_networks(annotation, "pods"))
    return (
        [f"{s.name}->{e.ifname}" for s, e in d.kept],
        [f"{s.name}@{s.interface}" for s in d.new],
        [e.ifname for e in d.gone],
    )


def test_the_same_annotation_changes_nothing() -> None:
    assert changes("blue, blue, green@data0") == (
        ["green->data0", "blue->net2", "blue->net3"],
        [],
        [],
    )


def test_an_element_without_interface_keeps_the_name_it_got_in_order() -> None:
    kept, new, gone = changes("blue, green@data0")
    assert kept == ["green->data0", "blue->net2"] and new == [] and gone == ["net3"]


def test_an_explicit_name_is_its_identity() -> None:
    kept, new, gone = changes("blue@net3, green@data1")
    assert kept == ["blue->net3"]
    assert new == ["green@data1"]
    assert gone == ["net2", "data0"]


def test_an_explicit_interface_is_not_matched_by_an_element_without_one() -> None:
    _, new, gone = changes("blue, blue, green")
    assert new == ["green@None"] and gone == ["data0"]


def test_the_cluster_network_and_default_networks_are_never_removed() -> None:
    kept, new, gone = changes("")
    assert kept == [] and new == []
    assert gone == ["net2", "net3", "data0"]
    # Nor matched: asking for monitor again is a new attachment of it.
    assert changes("kube-system/monitor")[1] == ["monitor@None"]


def test_networks_of_unknown_or_delegate_origin_are_kept() -> None:
    entries = [*SANDBOX[:2], entry("pods/old", "net2", ""), entry("pods/hot", "x1", DELEGATE)]
    assert changes("", entries) == ([], [], [])
    assert changes("old", entries) == (["old->net2"], [], [])  # still matched


def test_next_names_are_the_lowest_free() -> None:
    assert next_names({"eth0", "net1", "net3"}, 3) == ["net2", "net4", "net5"]
    assert next_names(set(), 0) == []


def test_a_network_whose_release_failed_is_neither_kept_nor_removed_again() -> None:
    entries = [*SANDBOX[:2], entry("pods/blue", "net2", state=REMOVING)]
    assert changes("blue", entries) == ([], ["blue@None"], [])  # a new one, on a free name
    assert changes("", entries) == ([], [], [])
