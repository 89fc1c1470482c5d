"""The pools, kept in the Kubernetes API: one IPPool object per range (crds/ippool.yaml).

An IPPool (`ipam.multinet.dev/v1alpha1`, in the plugin's `poolNamespace`) is named
after its subnet, prefixed by the `network_name` if any (whereabouts names its pools the
same way: `10.1.0.0-24`, `net-a-fd00--64`); its `spec.allocations` maps an offset in the
subnet (a decimal string) to its owner. Every change is a read, then a replace carrying
the resourceVersion read: the API server refuses it (409) when another writer got there
first, and the change is made again on what that writer left, after a random pause that
grows with each conflict (writers that collided do not collide again in step). After
`ATTEMPTS` conflicts in a row the answer is TryAgainLater (code 11): the runtime retries.
Duplicates are impossible by construction: an offset is taken only in a write the API
server accepted over the exact state it was chosen from.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from multinet.cluster.api import ApiCluster, Conflict, path
from multinet.cni.errors import ClusterError, InvalidConfig, PoolExhausted, TryAgainLater
from multinet.ipam.ranges import Address, Range

log = logging.getLogger("multinet.ipam")

GROUP, VERSION, PLURAL, KIND = "ipam.multinet.dev", "v1alpha1", "ippools", "IPPool"
API_VERSION = f"{GROUP}/{VERSION}"
ATTEMPTS = 25  # conflicting writes in a row before code 11
PAUSE = 0.005  # seconds: the first conflict's pause at most; doubled up to PAUSE_MAX
PAUSE_MAX = 0.2
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Owner:
    """Who holds an address: the attachment (container ID and interface), its pod, the
    network (the netconf's name) and the node it was allocated on."""

    container_id: str
    ifname: str
    pod: str = ""  # namespace/name
    pod_uid: str = ""
    network: str = ""
    node: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"containerID": self.container_id, "ifname": self.ifname}
        for key, value in (
            ("podRef", self.pod),
            ("podUID", self.pod_uid),
            ("network", self.network),
            ("node", self.node),
        ):
            if value:
                out[key] = value
        return out

    def holds(self, entry: Any) -> bool:
        """True when the allocation `entry` is this attachment's."""
        return (
            isinstance(entry, dict)
            and entry.get("containerID") == self.container_id
            and entry.get("ifname") == self.ifname
        )


def pool_name(network_name: str, rng: Range) -> str:
    """The IPPool's name for `rng`: its subnet with '/' and ':' as '-', after the
    network name if any."""
    text = rng.cidr.replace("/", "-").replace(":", "-")
    name = f"{network_name}-{text}" if network_name else text
    name = name.lower()
    if len(name) > 253 or not _NAME.match(name):
        raise InvalidConfig(
            f"multinet-ipam: network_name {network_name!r} makes the pool name {name!r}, "
            "which is not a Kubernetes object name (lower case letters, digits, '-' and '.')"
        )
    return name


def _pause(attempt: int) -> float:
    return random.uniform(0, min(PAUSE * 2**attempt, PAUSE_MAX))


class Pools:
    """The IPPools of one namespace, through an API client."""

    def __init__(self, api: ApiCluster, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def _path(self, name: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
        if not name:
            return path(base, namespace=self.namespace)
        return path(base + "/{name}", namespace=self.namespace, name=name)

    def get(self, name: str) -> dict[str, Any] | None:
        return self.api.read_object(f"get IPPool {self.namespace}/{name}", self._path(name))

    def _read_or_create(self, name: str, rng: Range) -> dict[str, Any]:
        pool = self.get(name)
        if pool is None:
            body = {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"range": rng.cidr, "allocations": {}},
            }
            what = f"create IPPool {self.namespace}/{name}"
            pool = self.api.write_object(what, "POST", self._path(), body)
        spec = pool.get("spec")
        if not isinstance(spec, dict) or spec.get("range") != rng.cidr:
            found = spec.get("range") if isinstance(spec, dict) else None
            raise ClusterError(
                f"IPPool {self.namespace}/{name} is for range {found!r}, not {rng.cidr}",
                "another pool has this name: give the NAD a network_name of its own",
            )
        if not isinstance(spec.get("allocations"), dict):
            spec["allocations"] = {}
        return pool

    def _change(self, name: str, rng: Range | None, edit: Callable[[dict[str, Any]], bool]) -> bool:
        """Read the pool (created if `rng` is given), `edit` its allocations in place and
        write it back when `edit` says it changed them; on a conflict, again on the pool as
        it is now. False when there is no pool (and `rng` is None) or nothing to change."""
        for attempt in range(ATTEMPTS):
            try:
                if rng is not None:
                    pool = self._read_or_create(name, rng)
                else:
                    found = self.get(name)
                    if found is None:
                        return False
                    pool = found
                    spec = pool.get("spec")
                    if not isinstance(spec, dict) or not isinstance(spec.get("allocations"), dict):
                        return False
                if not edit(pool["spec"]["allocations"]):
                    return False
                what = f"update IPPool {self.namespace}/{name}"
                self.api.write_object(what, "PUT", self._path(name), pool)
                return True
            except Conflict:
                log.debug(
                    "IPPool %s/%s: conflict %d, reading it again", self.namespace, name, attempt + 1
                )
                time.sleep(_pause(attempt))
        raise TryAgainLater(
            f"IPPool {self.namespace}/{name}: {ATTEMPTS} writes in a row lost to other "
            "writers (409 Conflict); try again"
        )

    def allocate(self, name: str, rng: Range, owner: Owner, want: Address | None) -> int:
        """An offset of `rng` for `owner`: the one it holds already (an ADD repeated), the
        address `want` if given (usable and free, or InvalidConfig), else the lowest free
        one (PoolExhausted when there is none)."""
        taken: list[int] = []

        def edit(allocations: dict[str, Any]) -> bool:
            taken.clear()
            for key, entry in allocations.items():
                if owner.holds(entry) and key.isdigit():
                    taken.append(int(key))
                    return False
            if want is not None:
                offset = rng.offset(want)
                if not rng.usable(offset):
                    raise InvalidConfig(
                        f"multinet-ipam: requested IP {want} is not in pool {name}'s range "
                        f"{_span(rng)} (or is excluded, or the gateway)"
                    )
                holder = allocations.get(str(offset))
                if holder is not None:
                    raise InvalidConfig(
                        f"multinet-ipam: requested IP {want} of pool {name} is allocated "
                        f"already, to {_who(holder)}"
                    )
            else:
                used = _offsets(allocations)
                found = rng.next_free(used)
                if found is None:
                    raise PoolExhausted(
                        f"multinet-ipam: pool {self.namespace}/{name} ({_span(rng)}) is "
                        f"exhausted: all {rng.size()} addresses are allocated",
                        "release addresses (delete pods) or widen the range",
                    )
                offset = found
            allocations[str(offset)] = owner.to_json()
            taken.append(offset)
            return True

        self._change(name, rng, edit)
        return taken[0]

    def release(self, name: str, owner: Owner) -> bool:
        """Remove `owner`'s allocations from the pool; False when it held none."""

        def edit(allocations: dict[str, Any]) -> bool:
            mine = [k for k, entry in allocations.items() if owner.holds(entry)]
            for key in mine:
                del allocations[key]
            return bool(mine)

        return self._change(name, None, edit)

    def held(self, name: str, owner: Owner) -> list[int]:
        """The offsets `owner` holds in the pool."""
        pool = self.get(name)
        allocations = ((pool or {}).get("spec") or {}).get("allocations") or {}
        if not isinstance(allocations, dict):
            return []
        return [int(k) for k, e in allocations.items() if owner.holds(e) and k.isdigit()]

    def collect(self, name: str, node: str, network: str, keep: Collection[tuple[str, str]]) -> int:
        """GC: remove the allocations of `network` made on `node` whose (container ID,
        interface) is not in `keep`; how many went."""
        gone: list[str] = []

        def edit(allocations: dict[str, Any]) -> bool:
            gone.clear()
            for key, entry in list(allocations.items()):
                if (
                    isinstance(entry, dict)
                    and entry.get("node") == node
                    and entry.get("network") == network
                    and (entry.get("containerID"), entry.get("ifname")) not in keep
                ):
                    gone.append(key)
                    del allocations[key]
            return bool(gone)

        self._change(name, None, edit)
        return len(gone)


def _offsets(allocations: dict[str, Any]) -> set[int]:
    return {int(k) for k in allocations if k.isdigit()}


def _span(rng: Range) -> str:
    return f"{rng.address(rng.first)}-{rng.address(rng.last)} of {rng.cidr}"


def _who(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "an unknown owner"
    pod = entry.get("podRef") or "a pod"
    return f"{pod} (container {entry.get('containerID')}, {entry.get('ifname')})"
