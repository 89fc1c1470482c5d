"""What one conformance test works with, bundled: the `lab` and `rig` fixtures' types.

`Lab`: the kernel side (a fresh namespace and more on demand, a free bridge name, three
random subnets, multinet's and the plugins' state directories, Debian's plugins).
`Rig`: a lab plus the cnitool driver on the real libcni, its NETCONFPATH, its cache
directory and its CNI_PATH, with `run` for ``cnitool COMMAND NET NETNS``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import secrets
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.conformance.libcni import StateDirs, container_id, run_cnitool, write_netconf


@dataclasses.dataclass(frozen=True)
class Lab:
    cni_bin_dir: Path  # Debian's reference plugins
    netns: str  # a fresh namespace's path, deleted afterwards
    new_netns: Callable[[], str]  # another one, deleted afterwards too
    bridge: str  # a free name (deleted afterwards if it exists): a plugin's, or make_bridge()
    subnets: tuple[ipaddress.IPv4Network, ...]  # three random 10.x.y.0/24
    dirs: StateDirs  # multinet's cniDir, host-local's and tuning's dataDir
    tmp_path: Path

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return self.subnets[0]

    def make_bridge(self) -> str:
        """Create `bridge` up front, up, with a fixed MAC; returns its name.

        Use it when several containers share a bridge: a bridge takes the lowest MAC of
        its ports, so with a plugin-created bridge a later ADD changes it and the bridge
        plugin's CHECK (Debian 1.1.1) fails earlier containers with "Bridge interface
        ... Mac doesn't match". A set MAC stays."""
        mac = "02:6d:6e:" + ":".join(secrets.token_hex(3)[i : i + 2] for i in (0, 2, 4))
        subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "address", mac, "up"], check=True)
        return self.bridge


@dataclasses.dataclass(frozen=True)
class Rig(Lab):
    cnitool: Path  # the driver (cnitool's command line on the real libcni)
    confdir: Path  # NETCONFPATH, empty at first
    cache_dir: Path  # CNI_CACHE_DIR, empty at first
    cni_path: tuple[Path, ...] = ()  # CNI_PATH for `run`

    def with_path(self, *first: Path) -> Rig:
        """The same rig with `first` ahead on CNI_PATH."""
        return dataclasses.replace(self, cni_path=(*first, *self.cni_path))

    def write(self, conf: Mapping[str, Any]) -> Path:
        return write_netconf(self.confdir, conf)

    def run(
        self,
        command: str,
        net: str,
        netns: str | None = None,
        *,
        exe: Path | None = None,
        cni_path: Sequence[Path] | None = None,
        cache_dir: Path | None = None,
        ifname: str = "eth0",
        cni_args: str | Mapping[str, str] | None = None,
        cap_args: Mapping[str, Any] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``cnitool COMMAND NET NETNS`` (the rig's namespace unless given)."""
        return run_cnitool(
            exe or self.cnitool,
            command,
            net,
            netns or self.netns,
            netconfpath=self.confdir,
            cni_path=list(cni_path if cni_path is not None else self.cni_path),
            cache_dir=cache_dir or self.cache_dir,
            ifname=ifname,
            cni_args=cni_args,
            cap_args=cap_args,
        )

    def cached(self, net: str, netns: str | None = None, cache_dir: Path | None = None) -> Path:
        """Where libcni caches the ADD result of `net` on eth0 of `netns`."""
        cid = container_id(netns or self.netns)
        return (cache_dir or self.cache_dir) / "results" / f"{net}-{cid}-eth0"
