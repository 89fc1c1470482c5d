"""multinet-ipam's range math: bounds, exclusions, offsets and the lowest free offset,
against a brute-force enumeration of the addresses (hypothesis over small subnets)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multinet.cni.errors import InvalidConfig
from multinet.ipam.ranges import Range, make_range, merge, parse_range_text

ip = ipaddress.ip_address
net = ipaddress.ip_network


def test_ipv4_skips_the_network_and_broadcast_addresses() -> None:
    rng = make_range(net("10.1.0.0/29"))
    assert (rng.first, rng.last, rng.size()) == (1, 6, 6)
    assert rng.next_free(set()) == 1
    assert rng.interface(1) == "10.1.0.1/29"
    assert rng.next_free({1, 2, 3, 4, 5, 6}) is None


def test_point_to_point_and_host_subnets_give_every_address() -> None:
    assert make_range(net("10.1.0.0/31")).size() == 2
    assert make_range(net("10.1.0.7/32")).size() == 1


def test_ipv6_skips_only_the_subnet_router_anycast_address() -> None:
    rng = make_range(net("fd00::/126"))
    assert (rng.first, rng.last) == (1, 3)
    assert str(rng.address(3)) == "fd00::3"


def test_start_end_gateway_and_exclude_bound_the_range() -> None:
    rng = make_range(
        net("10.1.0.0/24"),
        start=ip("10.1.0.10"),
        end=ip("10.1.0.20"),
        exclude=[net("10.1.0.12/31"), net("10.1.0.0/29")],
        gateway=ip("10.1.0.10"),
    )
    assert rng.next_free(set()) == 11
    assert rng.next_free({11}) == 14
    assert rng.size() == 11 - 1 - 2  # 10..20, less the gateway and .12-.13
    assert not rng.usable(10) and not rng.usable(12) and not rng.usable(21)


def test_a_huge_ipv6_range_finds_a_free_offset_at_once() -> None:
    rng = make_range(net("fd00::/64"), exclude=[net("fd00::/80")])
    assert rng.next_free(set()) == 2**48
    assert rng.size() == 2**64 - 2**48


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": ip("10.2.0.1")}, "range_start 10.2.0.1 is outside 10.1.0.0/24"),
        ({"end": ip("fd00::1")}, "range_end fd00::1 is outside"),
        ({"gateway": ip("10.9.0.1")}, "gateway 10.9.0.1 is outside"),
        ({"start": ip("10.1.0.9"), "end": ip("10.1.0.5")}, "range_start is after range_end"),
        ({"exclude": [net("fd00::/64")]}, "is not of 10.1.0.0/24's address family"),
    ],
)
def test_bad_bounds_are_invalid_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        make_range(net("10.1.0.0/24"), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "subnet", "start", "end"),
    [
        ("10.1.0.0/24", "10.1.0.0/24", None, None),
        ("10.1.0.10-10.1.0.20/24", "10.1.0.0/24", "10.1.0.10", "10.1.0.20"),
        ("10.1.0.10-10.1.0.0/24", "10.1.0.0/24", "10.1.0.10", None),
        ("fd00::5-fd00::9/64", "fd00::/64", "fd00::5", "fd00::9"),
    ],
)
def test_whereabouts_range_forms(
    text: str, subnet: str, start: str | None, end: str | None
) -> None:
    got = parse_range_text(text, "range")
    assert (str(got[0]), got[1] and str(got[1]), got[2] and str(got[2])) == (subnet, start, end)


@pytest.mark.parametrize("text", ["10.1.0.0", "x-10.1.0.0/24", "10.1.0.1-nope/24", 5])
def test_bad_range_text_is_invalid_config(text: object) -> None:
    with pytest.raises(InvalidConfig, match="range"):
        parse_range_text(text, "range")


def test_merge_joins_overlapping_and_adjacent_spans() -> None:
    assert merge([(5, 6), (1, 2), (3, 3), (8, 9), (9, 12)]) == ((1, 3), (5, 6), (8, 12))


@st.composite
def ranges(draw: st.DrawFn) -> tuple[Range | None, list[int]]:
    prefix = draw(st.integers(24, 32))
    subnet = net(f"10.{draw(st.integers(0, 255))}.0.0/{prefix}", strict=False)
    size = subnet.num_addresses
    start = draw(st.none() | st.integers(0, size - 1))
    end = draw(st.none() | st.integers(start or 0, size - 1))
    excludes = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(28, 32)), max_size=4))
    exclude = [
        net(f"{subnet.network_address + off}/{max(plen, prefix)}", strict=False)
        for off, plen in excludes
    ]
    gateway = draw(st.none() | st.integers(0, size - 1))
    kwargs = {
        "start": None if start is None else subnet.network_address + start,
        "end": None if end is None else subnet.network_address + end,
        "exclude": exclude,
        "gateway": None if gateway is None else subnet.network_address + gateway,
    }
    try:
        rng = make_range(subnet, **kwargs)  # type: ignore[arg-type]
    except InvalidConfig:
        return None, []
    # Brute force: every address of the subnet the rules allow.
    allowed = []
    for off in range(size):
        addr = subnet.network_address + off
        if prefix < 31 and off in (0, size - 1):
            continue
        if kwargs["start"] is not None and addr < kwargs["start"]:
            continue
        if kwargs["end"] is not None and addr > kwargs["end"]:
            continue
        if any(addr in e for e in exclude) or addr == kwargs["gateway"]:
            continue
        allowed.append(off)
    return rng, allowed


@settings(max_examples=200, deadline=None)
@given(ranges(), st.data())
def test_next_free_agrees_with_brute_force(
    case: tuple[Range | None, list[int]], data: st.DataObject
) -> None:
    rng, allowed = case
    if rng is None:
        return
    assert rng.size() == len(allowed)
    used = set(data.draw(st.lists(st.sampled_from(allowed)) if allowed else st.just([])))
    free = [o for o in allowed if o not in used]
    assert rng.next_free(used) == (free[0] if free else None)
    for off in allowed:
        assert rng.usable(off)
        assert rng.offset(rng.address(off)) == off
