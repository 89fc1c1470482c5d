"""multinet-ipam's entry points: cmd_add, cmd_del, cmd_check, cmd_gc and main.

ADD: one address from each range (its pool's lowest free one, or the one asked for),
the node's note written first; a failure in a later range releases the earlier ones.
DEL: release the attachment's addresses in every pool of the config; succeeds when there
was nothing to release, and when the API server cannot be reached and this node holds no
note of the attachment (records.py). CHECK: each pool still holds the attachment's
address. GC (1.1.0): release the allocations of this network made on this node for
attachments the runtime no longer has. The API client is imported only for these
commands: VERSION costs no more than the CNI protocol's modules.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from multinet.cni import request as cnirequest
from multinet.cni import version
from multinet.cni.errors import CNIError, InvalidConfig, UnknownContainer
from multinet.ipam.config import IpamConf, load

if TYPE_CHECKING:
    from multinet.cni.result import Route
    from multinet.ipam.config import RouteConf
    from multinet.ipam.pools import Owner, Pools
    from multinet.ipam.ranges import Address, Range

log = logging.getLogger("multinet.ipam")


def node_name(env: Mapping[str, str]) -> str:
    """The node the plugin runs on: NODE_NAME when the runtime's environment has it, else
    the host name (a kubelet's node name by default)."""
    return env.get("NODE_NAME") or os.uname().nodename


class Plugin:
    """One request: its config, its owner, its pools."""

    def __init__(self, req: cnirequest.Request) -> None:
        from multinet.ipam.pools import Owner

        self.req = req
        self.conf: IpamConf = load(req.config, req.args)
        for what in self.conf.pending:
            log.warning("multinet-ipam: %s", what)
        namespace, name = req.arg("K8S_POD_NAMESPACE") or "", req.arg("K8S_POD_NAME") or ""
        self.owner: Owner = Owner(
            container_id=req.container_id,
            ifname=req.ifname,
            pod=f"{namespace}/{name}" if name else "",
            pod_uid=req.arg("K8S_POD_UID") or "",
            network=self.conf.name,
            node=node_name(req.env),
        )
        self._pools: Pools | None = None

    @property
    def pools(self) -> Pools:
        if self._pools is None:
            from multinet.cluster.apiserver import api_cluster
            from multinet.ipam.pools import Pools

            api = api_cluster(self.conf.kubeconfig, self.conf.data_dir)
            self._pools = Pools(api, self.conf.namespace)
        return self._pools

    def close(self) -> None:
        if self._pools is not None:
            self._pools.api.close()

    def names(self) -> list[tuple[str, Range]]:
        from multinet.ipam.pools import pool_name

        return [(pool_name(self.conf.network_name, r), r) for r in self.conf.ranges]

    # -- ADD -----------------------------------------------------------------------------

    def wanted(self) -> dict[int, Address]:
        """The requested address of each range (by index); InvalidConfig for one that is
        in no range, or two for one range."""
        out: dict[int, Address] = {}
        for ip in self.conf.static:
            index = next(
                (i for i, r in enumerate(self.conf.ranges) if r.family == ip.version
                 and ip in r.subnet),
                None,
            )  # fmt: skip
            if index is None:
                cidrs = ", ".join(r.cidr for r in self.conf.ranges)
                raise InvalidConfig(f"multinet-ipam: requested IP {ip} is in none of {cidrs}")
            if index in out:
                raise InvalidConfig(
                    f"multinet-ipam: requested IPs {out[index]} and {ip} are both in "
                    f"{self.conf.ranges[index].cidr}: one address per range"
                )
            out[index] = ip
        return out

    def cmd_add(self) -> dict[str, Any]:
        from multinet.cni.result import DNS, IPConfig, Result
        from multinet.ipam.records import Records

        wanted = self.wanted()
        names = self.names()
        records = Records(self.conf.data_dir)
        records.write(
            self.owner.container_id,
            self.owner.ifname,
            {"pools": [n for n, _ in names], "namespace": self.conf.namespace},
        )
        done: list[str] = []
        ips: list[IPConfig] = []
        try:
            for i, (name, rng) in enumerate(names):
                offset = self.pools.allocate(name, rng, self.owner, wanted.get(i))
                done.append(name)
                gateway = str(rng.gateway) if rng.gateway is not None else None
                ips.append(IPConfig(rng.interface(offset), gateway))
        except BaseException:
            if self._undo(done):
                records.remove(self.owner.container_id, self.owner.ifname)
            raise
        dns = self.conf.dns
        result = Result(
            self.conf.cni_version,
            ips=tuple(ips),
            routes=tuple(_route(r) for r in self.conf.routes),
            dns=DNS(
                nameservers=tuple(dns.get("nameservers") or ()),
                domain=dns.get("domain"),
                search=tuple(dns.get("search") or ()),
                options=tuple(dns.get("options") or ()),
            ),
        )
        return result.to_dict(self.conf.cni_version)

    def _undo(self, names: list[str]) -> bool:
        """Release what this ADD allocated; False when a release failed (the note stays:
        the runtime's DEL releases it)."""
        ok = True
        for name in reversed(names):
            try:
                self.pools.release(name, self.owner)
            except CNIError as e:
                log.warning("multinet-ipam: rollback of pool %s failed: %s", name, e)
                ok = False
        return ok

    # -- DEL, CHECK, GC ------------------------------------------------------------------

    def cmd_del(self) -> None:
        from multinet.ipam.records import Records

        records = Records(self.conf.data_dir)
        noted = records.exists(self.owner.container_id, self.owner.ifname)
        try:
            for name, _ in self.names():
                self.pools.release(name, self.owner)
        except CNIError as e:
            if noted:
                raise  # this node allocated: the runtime retries the DEL
            log.warning(
                "multinet-ipam: DEL of %s %s: the pools cannot be read (%s); this node "
                "allocated nothing for it: done",
                self.owner.container_id,
                self.owner.ifname,
                e,
            )
            return
        records.remove(self.owner.container_id, self.owner.ifname)

    def cmd_check(self) -> None:
        for name, rng in self.names():
            if not self.pools.held(name, self.owner):
                raise UnknownContainer(
                    f"multinet-ipam: pool {name} ({rng.cidr}) holds no address for container "
                    f"{self.owner.container_id} ({self.owner.ifname})"
                )

    def cmd_gc(self) -> None:
        valid = self.req.config.get("cni.dev/valid-attachments")
        if not isinstance(valid, list):
            raise InvalidConfig("multinet-ipam: GC needs cni.dev/valid-attachments (a list)")
        keep = {
            (str(a.get("containerID")), str(a.get("ifname")))
            for a in valid
            if isinstance(a, Mapping)
        }
        for name, _ in self.names():
            gone = self.pools.collect(name, self.owner.node, self.conf.name, keep)
            if gone:
                log.info("multinet-ipam: GC released %d address(es) of pool %s", gone, name)


def _route(conf: RouteConf) -> Route:
    from multinet.cni.result import Route

    extra = dict(conf.extra)
    return Route(
        conf.dst,
        conf.gw,
        mtu=extra.get("mtu"),
        advmss=extra.get("advmss"),
        priority=extra.get("priority"),
        table=extra.get("table"),
        scope=extra.get("scope"),
    )


def run(env: Mapping[str, str], stdin: bytes, out: TextIO) -> int:
    """The error boundary: every CNIError becomes the spec's error JSON on stdout."""
    cni_version = version.LATEST
    try:
        if env.get("CNI_COMMAND") == "VERSION":
            versions = list(version.SUPPORTED)
            out.write(json.dumps({"cniVersion": version.LATEST, "supportedVersions": versions}))
            return 0
        req = cnirequest.from_env(env, stdin)
        if req.cni_version not in version.SUPPORTED:
            raise InvalidConfig(
                f"multinet-ipam: cniVersion {req.cni_version} is not supported "
                f"({', '.join(version.SUPPORTED)})"
            )
        cni_version = req.cni_version
        version.require_for(req.command, req.cni_version)
        if req.command == "STATUS":
            return 0  # ready whenever it runs: the API server is asked per request
        plugin = Plugin(req)
        try:
            if req.command == "ADD":
                out.write(json.dumps(plugin.cmd_add()))
            elif req.command == "DEL":
                plugin.cmd_del()
            elif req.command == "CHECK":
                plugin.cmd_check()
            elif req.command == "GC":
                plugin.cmd_gc()
        finally:
            plugin.close()
        return 0
    except CNIError as e:
        out.write(json.dumps(e.to_dict(cni_version)))
        return 1


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    sys.exit(run(os.environ, stdin, sys.stdout))


if __name__ == "__main__":
    main()
