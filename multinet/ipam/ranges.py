"""A range of addresses to hand out, as offsets from its subnet's first address.

A pool stores allocations by offset (whereabouts does the same), so the math here is on
integers: the first and last offset a range may give, the excluded spans inside them,
and the lowest free offset among those allocated. The subnet's own address is never
given, nor an IPv4 subnet's broadcast (a /31 and a /32 give every address, RFC 3021),
nor the gateway. Excluded spans are kept sorted and merged, so finding a free offset
costs the allocations and spans it steps over, never the size of the range (an IPv6
/64 is 2**64 offsets).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from multinet.cni.errors import InvalidConfig

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: object, where: str) -> Address:
    if not isinstance(text, str):
        raise InvalidConfig(f"multinet-ipam: {where} must be an IP address, got {text!r}")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidConfig(f"multinet-ipam: {where}: {text!r} is not an IP address") from None


def parse_network(text: object, where: str) -> Network:
    if not isinstance(text, str) or "/" not in text:
        raise InvalidConfig(f"multinet-ipam: {where} must be a CIDR (10.1.0.0/24), got {text!r}")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidConfig(f"multinet-ipam: {where}: {text!r} is not a CIDR") from None


def merge(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Inclusive spans sorted, overlapping and adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(spans):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return tuple(out)


@dataclass(frozen=True)
class Range:
    """`subnet`'s offsets `first`..`last` (inclusive), less the `excluded` spans."""

    subnet: Network
    first: int
    last: int
    excluded: tuple[tuple[int, int], ...] = ()
    gateway: Address | None = None

    @property
    def cidr(self) -> str:
        return str(self.subnet)

    @property
    def family(self) -> int:
        return self.subnet.version

    def address(self, offset: int) -> Address:
        return self.subnet.network_address + offset

    def offset(self, address: Address) -> int:
        return int(address) - int(self.subnet.network_address)

    def interface(self, offset: int) -> str:
        """The address at `offset` with the subnet's prefix length (a result's `address`)."""
        return f"{self.address(offset)}/{self.subnet.prefixlen}"

    def is_excluded(self, offset: int) -> bool:
        return any(low <= offset <= high for low, high in self.excluded)

    def usable(self, offset: int) -> bool:
        """True when this range may give the address at `offset`."""
        return self.first <= offset <= self.last and not self.is_excluded(offset)

    def size(self) -> int:
        """How many addresses this range may give."""
        total = self.last - self.first + 1
        for low, high in self.excluded:
            low, high = max(low, self.first), min(high, self.last)
            if low <= high:
                total -= high - low + 1
        return max(total, 0)

    def next_free(self, used: Collection[int]) -> int | None:
        """The lowest usable offset not in `used`, or None when there is none."""
        offset = self.first
        spans = iter(self.excluded)
        span = next(spans, None)
        while offset <= self.last:
            while span is not None and span[1] < offset:
                span = next(spans, None)
            if span is not None and span[0] <= offset:
                offset = span[1] + 1
                continue
            if offset not in used:
                return offset
            offset += 1
        return None


def make_range(
    subnet: Network,
    *,
    start: Address | None = None,
    end: Address | None = None,
    exclude: Iterable[Network] = (),
    gateway: Address | None = None,
    where: str = "range",
) -> Range:
    """The range of `subnet` between `start` and `end` (each inside it), less `exclude`
    (CIDRs, which may reach outside it) and the gateway."""
    base = int(subnet.network_address)
    top = subnet.num_addresses - 1
    if subnet.version == 4 and subnet.prefixlen >= 31:
        low, high = 0, top  # point-to-point and host routes: every address (RFC 3021)
    else:
        low, high = 1, top - 1 if subnet.version == 4 else top
    for name, addr in (("range_start", start), ("range_end", end), ("gateway", gateway)):
        if addr is not None and (addr.version != subnet.version or addr not in subnet):
            raise InvalidConfig(f"multinet-ipam: {where}: {name} {addr} is outside {subnet}")
    if start is not None:
        low = max(low, int(start) - base)
    if end is not None:
        high = min(high, int(end) - base)
    if low > high:
        raise InvalidConfig(f"multinet-ipam: {where}: range_start is after range_end in {subnet}")
    spans = []
    for net in exclude:
        if net.version != subnet.version:
            raise InvalidConfig(
                f"multinet-ipam: {where}: exclude {net} is not of {subnet}'s address family"
            )
        spans.append((int(net.network_address) - base, int(net.broadcast_address) - base))
    if gateway is not None:
        spans.append((int(gateway) - base, int(gateway) - base))
    return Range(subnet, low, high, merge(spans), gateway)


def parse_range_text(text: object, where: str) -> tuple[Network, Address | None, Address | None]:
    """whereabouts' `range`: a CIDR, or START-END/PREFIX ("10.1.0.10-10.1.0.20/24",
    the prefix the subnet's), or START-CIDR ("10.1.0.10-10.1.0.0/24")."""
    if not isinstance(text, str):
        raise InvalidConfig(f"multinet-ipam: {where} must be a CIDR, got {text!r}")
    first, dash, rest = text.partition("-")
    if not dash:
        return parse_network(text, where), None, None
    start = parse_address(first, f"{where} start")
    tail = parse_network(rest, where)
    end = ipaddress.ip_interface(rest).ip
    subnet = ipaddress.ip_network(f"{start}/{tail.prefixlen}", strict=False)
    if tail.network_address == end:  # START-CIDR: to the subnet's end
        return subnet, start, None
    return subnet, start, end
