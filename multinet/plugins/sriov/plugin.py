"""multinet-sriov's entry points: cmd_add, cmd_del, cmd_check, cmd_status and main.

ADD: find the VF (sysfs), refuse it if another live pod has it, save its original state,
apply the configured settings on the PF, move its netdev into the pod as CNI_IFNAME with
its MAC and MTU, run IPAM. Any failure undoes, in reverse, everything this ADD did (the
settings applied so far included: sriov-cni leaves them). DPDK mode (a userspace driver
bound): the PF settings only, no move, no addresses; the cache says so for DEL.
DEL: undo from the cache; succeeds when the netns is gone or nothing was added.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from multinet.cni import request as cnirequest
from multinet.cni import version
from multinet.cni.errors import CNIError, InvalidConfig, UnknownContainer
from multinet.cni.exec import Invocation, invoke
from multinet.cni.result import Interface, IPConfig, Result
from multinet.plugins.sriov import backend as vfbackend
from multinet.plugins.sriov import netlink, sysfs
from multinet.plugins.sriov.backend import SETTINGS, VfBackend, VfState, setting_values
from multinet.plugins.sriov.config import SriovConf, load
from multinet.plugins.sriov.state import State

log = logging.getLogger("multinet.sriov")


class Plugin:
    """One request's world: the VF backend, the sysfs root, the environment."""

    def __init__(self, backend: VfBackend, sys_root: str) -> None:
        self.backend = backend
        self.sys_root = sys_root

    # -- ADD ---------------------------------------------------------------------------

    def cmd_add(self, req: cnirequest.Request) -> dict[str, Any]:
        conf = load(req.config)
        store = State(conf.state_dir)
        with store.lock():
            if store.load(req.container_id, req.ifname) is not None:
                raise InvalidConfig(
                    f"sriov: container {req.container_id} already has {req.ifname}: DEL first"
                )
            vf = sysfs.discover(self.sys_root, conf.device_id)
            self._check_free(store, conf.device_id)
            original = self.backend.get(vf.pf, vf.index)
            record: dict[str, Any] = {
                "containerID": req.container_id,
                "ifname": req.ifname,
                "netns": req.netns,
                "conf": dict(conf.raw or {}),
                "vf": {"pci": vf.pci, "pf": vf.pf, "index": vf.index, "netdev": vf.netdev},
                "dpdk": vf.dpdk,
                "original": original.to_dict(),
                "applied": [],
                "moved": False,
                "ipam": None,
            }
            if not vf.dpdk:
                if not vf.netdev:
                    raise InvalidConfig(
                        f"sriov: VF {vf.pci} has no netdev and driver {vf.driver or 'none'} "
                        "is not a userspace one (vfio-pci, uio_pci_generic, igb_uio)"
                    )
                mac, mtu = netlink.link_info(vf.netdev)
                record["netdev"] = {"name": vf.netdev, "mac": mac, "mtu": mtu}
            store.save(req.container_id, req.ifname, record)  # before the first change
            store.allocate(vf.pci, {k: record[k] for k in ("containerID", "ifname", "netns")})
            try:
                return self._add(req, conf, store, record)
            except BaseException:
                try:
                    self._undo(req, store, record)
                except CNIError as e:  # the cache stays: the runtime's DEL retries
                    log.warning("sriov: the rollback of a failed ADD is incomplete: %s", e)
                raise

    def _check_free(self, store: State, pci: str) -> None:
        owner = store.owner(pci)
        if owner is None:
            return
        netns = str(owner.get("netns", ""))
        if netns and os.path.exists(netns):
            raise InvalidConfig(
                f"sriov: VF {pci} is already allocated to container "
                f"{owner.get('containerID')} ({owner.get('ifname')}) in {netns}"
            )
        log.info("VF %s: its previous owner's netns %s is gone: taking it over", pci, netns)

    def _add(
        self, req: cnirequest.Request, conf: SriovConf, store: State, record: dict[str, Any]
    ) -> dict[str, Any]:
        pf, index = record["vf"]["pf"], record["vf"]["index"]
        wanted = VfState(**{**record["original"], **conf.pf_settings()})
        configured = {vfbackend.setting_of(k) for k in conf.pf_settings()}
        for setting in SETTINGS:
            if setting in configured:
                record["pending"] = setting  # journaled first: a crash mid-set is undone too
                store.save(req.container_id, req.ifname, record)
                self.backend.set(pf, index, setting, setting_values(wanted, setting))
                record["applied"].append(setting)
                record["pending"] = None
        if record["dpdk"]:
            store.save(req.container_id, req.ifname, record)
            iface = Interface(name=req.ifname, pci_id=record["vf"]["pci"])
            return Result(conf.cni_version, interfaces=(iface,)).to_dict(conf.cni_version)
        record["moved"] = True
        store.save(req.container_id, req.ifname, record)
        netdev = record["netdev"]["name"]
        netlink.move_into(netdev, req.netns, req.ifname, conf.mac, conf.mtu)
        ipam: Result | None = None
        if conf.ipam:
            record["ipam"] = {}  # IPAM may allocate before it answers: DEL it on undo
            store.save(req.container_id, req.ifname, record)
            raw = self._ipam(req, conf, "ADD")
            assert raw is not None
            ipam = Result.from_dict(raw)
            record["ipam"] = raw
            netlink.configure(
                req.netns,
                req.ifname,
                [{"address": ip.address} for ip in ipam.ips],
                [{"dst": r.dst, "gw": r.gw} for r in ipam.routes],
            )
        mac, mtu, _ = netlink.addresses(req.netns, req.ifname)
        iface = Interface(
            name=req.ifname, mac=mac, mtu=mtu, sandbox=req.netns, pci_id=record["vf"]["pci"]
        )
        result = Result(
            conf.cni_version,
            interfaces=(iface,),
            ips=tuple(IPConfig(ip.address, ip.gateway, 0) for ip in (ipam.ips if ipam else ())),
            routes=ipam.routes if ipam else (),
            dns=ipam.dns if ipam else Result(conf.cni_version).dns,
        )
        record["result"] = result.to_dict(conf.cni_version)
        store.save(req.container_id, req.ifname, record)
        return dict(record["result"])

    def _ipam(
        self, req: cnirequest.Request, conf: SriovConf, command: str
    ) -> dict[str, Any] | None:
        """libcni's ipam.ExecAdd/ExecDel/ExecCheck: the IPAM plugin from CNI_PATH, with this
        plugin's own stdin and environment."""
        assert conf.ipam is not None
        inv = Invocation(
            container_id=req.container_id,
            netns=req.netns,
            ifname=req.ifname,
            args=req.args_raw,
            path=req.path,
            env=req.env,
        )
        config = dict(req.config)
        if command == "ADD":
            config.pop("prevResult", None)
        return invoke(str(conf.ipam["type"]), command, config, inv)

    # -- undo (DEL, and a failed ADD) ---------------------------------------------------

    def _undo(self, req: cnirequest.Request, store: State, record: dict[str, Any]) -> None:
        """Everything the record says was (or may have been) done, in reverse. Keeps going
        after a failure; the first is raised at the end (the cache stays for a retry)."""
        first: CNIError | None = None

        def attempt(what: str, fn: Callable[[], None]) -> None:
            nonlocal first
            try:
                fn()
            except CNIError as e:
                log.warning("sriov: undo %s failed: %s", what, e)
                first = first or e

        conf = load(record["conf"])
        if record.get("ipam") is not None and conf.ipam:
            ipam_req = cnirequest.Request(
                command="DEL",
                config=dict(record["conf"]),
                cni_version=req.cni_version,
                container_id=req.container_id,
                netns=req.netns,
                ifname=req.ifname,
                args_raw=req.args_raw,
                args=req.args,
                path=req.path,
                env=req.env,
            )
            attempt("IPAM", lambda: self._ipam_del(ipam_req, conf))
        owner = store.owner(record["vf"]["pci"])
        if owner is not None and (owner.get("containerID"), owner.get("ifname")) != (
            req.container_id,
            req.ifname,
        ):
            # Another pod took the VF over after this one's netns went: its settings and
            # netdev are that pod's now. Only this pod's IPAM lease was ours to release.
            log.info("sriov: VF %s now belongs to %s: not restored", record["vf"]["pci"], owner)
            if first is not None:
                raise first
            store.remove(req.container_id, req.ifname)
            return
        netns = str(record.get("netns") or req.netns)
        if record.get("moved") and record.get("netdev"):
            nd = record["netdev"]
            if netns and os.path.exists(netns):
                attempt(
                    "the VF netdev",
                    lambda: netlink.move_out(netns, req.ifname, nd["name"], nd["mac"], nd["mtu"]),
                )
            else:  # the netns is gone: the kernel sent the VF's netdev back to the host
                attempt("the VF netdev", lambda: self._restore_returned(record))
        elif record.get("netdev"):
            nd = record["netdev"]
            attempt(
                "the VF netdev",
                lambda: netlink.restore_host_link(nd["name"], nd["name"], nd["mac"], nd["mtu"]),
            )
        original = VfState.from_dict(record["original"])
        pf, index = record["vf"]["pf"], record["vf"]["index"]
        pending = record.get("pending")
        if pending:  # the setting a crash or a failure interrupted: restored if it can be
            try:
                self.backend.set(pf, index, pending, setting_values(original, pending))
            except CNIError as e:
                log.info("sriov: %s of VF %s on %s was not applied (%s)", pending, index, pf, e)
        for setting in reversed(record.get("applied", [])):
            values = setting_values(original, setting)
            attempt(
                f"{setting} of VF {index} on {pf}",
                lambda s=setting, v=values: self.backend.set(pf, index, s, v),  # type: ignore[misc]
            )
        if first is not None:
            raise first
        store.release(record["vf"]["pci"], req.container_id, req.ifname)
        store.remove(req.container_id, req.ifname)

    def _ipam_del(self, req: cnirequest.Request, conf: SriovConf) -> None:
        self._ipam(req, conf, "DEL")

    def _restore_returned(self, record: dict[str, Any]) -> None:
        """After the pod's netns went, the VF netdev is back in the host under whatever
        name it had in the pod (sysfs knows it): rename it back, MAC and MTU too."""
        nd = record["netdev"]
        try:
            vf = sysfs.discover(self.sys_root, record["vf"]["pci"])
        except CNIError:
            return
        current = vf.netdev or nd["name"]
        netlink.restore_host_link(current, nd["name"], nd["mac"], nd["mtu"])

    def cmd_del(self, req: cnirequest.Request) -> None:
        store = State(load_state_dir(req.config))
        with store.lock():
            record = store.load(req.container_id, req.ifname)
            if record is None:
                return  # never added, or already deleted
            self._undo(req, store, record)

    # -- CHECK -------------------------------------------------------------------------

    def cmd_check(self, req: cnirequest.Request) -> None:
        conf = load(req.config)
        record = State(conf.state_dir).load(req.container_id, req.ifname)
        if record is None:
            raise UnknownContainer(f"sriov: container {req.container_id} has no {req.ifname}")
        pf, index = record["vf"]["pf"], record["vf"]["index"]
        state = self.backend.get(pf, index)
        for key, want in conf.pf_settings().items():
            have = getattr(state, key)
            if have != want:
                raise InvalidConfig(
                    f"sriov: VF {index} on {pf}: {key} is {have!r}, ADD set {want!r}"
                )
        if record["dpdk"]:
            return
        mac, mtu, cidrs = netlink.addresses(req.netns, req.ifname)
        if conf.mac and mac.lower() != conf.mac.lower():
            raise InvalidConfig(f"sriov: {req.ifname} has MAC {mac}, ADD set {conf.mac}")
        if conf.mtu and mtu != conf.mtu:
            raise InvalidConfig(f"sriov: {req.ifname} has MTU {mtu}, ADD set {conf.mtu}")
        prev = req.config.get("prevResult") or record.get("result")
        if prev:
            for ip in Result.from_dict(prev).ips:
                if ip.interface in (None, 0) and ip.address not in cidrs:
                    raise InvalidConfig(f"sriov: {req.ifname} lacks {ip.address}")
        if conf.ipam:
            self._ipam(req, conf, "CHECK")


def load_state_dir(raw: Mapping[str, Any]) -> str:
    from multinet.plugins.sriov.config import DEFAULT_STATE_DIR

    value = raw.get("cniDir")
    return value if isinstance(value, str) and value else DEFAULT_STATE_DIR


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
            raise InvalidConfig(f"sriov: cniVersion {req.cni_version} is not supported")
        cni_version = req.cni_version
        plugin = Plugin(vfbackend.from_env(env), sysfs.root(env))
        if req.command == "ADD":
            out.write(json.dumps(plugin.cmd_add(req)))
        elif req.command == "DEL":
            plugin.cmd_del(req)
        elif req.command == "CHECK":
            plugin.cmd_check(req)
        return 0  # STATUS: ready when it runs; GC: the cache has no leases to collect
    except CNIError as e:
        out.write(json.dumps(e.to_dict(cni_version)))
        return 1


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    sys.exit(run(os.environ, stdin, sys.stdout))


if __name__ == "__main__":
    main()
