"""The engine: the seams of one host, and what it does outside any one sandbox.

`sandbox(req)` takes a sandbox's lock and yields its steps (engine.sandbox: ADD, DEL,
CHECK, a change of the running pod); GC and STATUS work across sandboxes. The engine
calls nothing above it: the verbs (meta.verbs) plan, report and run its steps in order.
All I/O goes through the seams in engine.ports, passed in by the composition root.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence

from multinet.cni import chain
from multinet.cni.errors import CNIError, InvalidConfig, IOFailure, NotAvailable, TryAgainLater
from multinet.cni.exec import Invocation, Observer
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine import dhcp
from multinet.engine.journal import Entry, Journal
from multinet.engine.plan import Plan
from multinet.engine.ports import (
    Executor,
    Gate,
    JournalStore,
    LegacyRecords,
    PodNetns,
    ReleaseStore,
)
from multinet.engine.sandbox import Sandbox
from multinet.log import log
from multinet.record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

READINESS_POLL = 0.1  # seconds between looks for the readiness indicator file


class Engine:
    def __init__(
        self,
        conf: NetConf,
        *,
        store: JournalStore,
        pod_netns: PodNetns,
        executor: Executor,
        observer: Observer | None = None,
        legacy: LegacyRecords | None = None,
        probe: dhcp.Probe = dhcp.probe,
        releases: ReleaseStore | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.conf = conf
        self.store = store
        self.pod_netns = pod_netns
        self.executor = executor
        self.observer = observer  # delegate latency (the daemon's metrics)
        # Another meta-plugin's records (Multus's cache), for DELs of the pods it attached.
        self.legacy = legacy
        self.probe = probe  # whether a daemon answers on a socket (the DHCP client's)
        self.releases = releases  # where a DEL records the releases it skipped
        self.gate = gate  # held shared by whatever may allocate, alone by a CNI GC

    @contextlib.contextmanager
    def sandbox(
        self, req: Request, *, create: bool = True, lenient: bool = False
    ) -> Iterator[Sandbox]:
        """The sandbox of `req`, its per-container lock held, its journal read.

        `create` (ADD): the lock is created, and a crashed ADD's leftovers are undone
        first (AlreadyAttached when the sandbox is attached). Without it (DEL, CHECK, a
        change of the running pod), nothing is created where no journal was ever kept.
        `lenient` (DEL): a journal out of reach (cniDir unusable) is logged and the
        sandbox has none: no journal can live where none can be written. All but DEL may
        allocate: they hold the GC gate shared (engine.gate)."""
        with contextlib.ExitStack() as held:
            try:
                if self.gate is not None and not lenient:
                    held.enter_context(self.gate.shared(create))
                held.enter_context(self.store.lock(req.container_id, req.ifname, create=create))
                journal = self.store.load(req.container_id, req.ifname)
            except IOFailure as e:
                if not lenient:
                    raise
                log.warning("DEL %s: the journal is out of reach (%s)", req.container_id, e)
                journal = None
            box = Sandbox(self, req, journal)
            if create:
                box.undo_crashed_add()
            yield box

    def invocation(
        self,
        req: Request,
        ifname: str,
        netns_path: str | None = None,
        extra_args: Sequence[tuple[str, str]] = (),
    ) -> Invocation:
        """How a delegate of `req` runs on `ifname` (its CNI_ARGS extended by `extra_args`)."""
        args = ";".join([req.args_raw] * bool(req.args_raw) + [f"{k}={v}" for k, v in extra_args])
        return Invocation(
            container_id=req.container_id,
            netns=req.netns if netns_path is None else netns_path,
            ifname=ifname,
            args=args,
            path=(self.conf.bin_dir, *req.path),
            env=req.env,
            timeout=self.conf.delegate_timeout,
            observer=self.observer,
        )

    def wait_until_ready(self) -> None:
        """As Multus: an ADD waits (bounded) for the cluster network's readiness indicator
        file, then asks the runtime to try again later. DEL never waits for it."""
        indicator = self.conf.readiness_indicator_file
        if not indicator or os.path.exists(indicator):
            return
        deadline = time.monotonic() + self.conf.readiness_timeout
        while time.monotonic() < deadline:
            time.sleep(min(READINESS_POLL, max(deadline - time.monotonic(), 0)))
            if os.path.exists(indicator):
                return
        raise TryAgainLater(
            f"the cluster network is not ready: readiness indicator file {indicator} "
            f"still missing after {self.conf.readiness_timeout:g}s; try again later"
        )

    def preflight(self, plan: Plan) -> None:
        """Before any delegate of an ADD (or of a change) runs: the DHCP client daemon
        its plugins need answers (TryAgainLater naming what does not)."""
        dhcp.check(plan, self.probe, root=self.conf.raw.get("hostRoot", ""))

    # -- GC ------------------------------------------------------------------

    def stale(self, req: Request, valid: Sequence[Mapping[str, str]]) -> list[Request]:
        """The DEL requests of the sandboxes journaled here that `valid` (GC's
        cni.dev/valid-attachments) no longer names."""
        keep = {(v["containerID"], v["ifname"]) for v in valid}
        return [_request_for(req, *key) for key in self.store.keys() if key not in keep]

    def gc(self, req: Request, valid: Sequence[Mapping[str, str]]) -> None:
        """Each network's plugins GC, told the attachments still journaled on it."""
        keep = {(v["containerID"], v["ifname"]) for v in valid}
        inv = self.invocation(req, "")
        for net, atts in self.gc_targets(keep):
            self.executor.gc(net, inv, atts)

    def gc_targets(
        self, keep: Collection[tuple[str, str]], also: Sequence[chain.NetworkConfig] = ()
    ) -> list[tuple[chain.NetworkConfig, list[dict[str, str]]]]:
        """Each network a GC is owed to, with the attachments journaled on it among the
        sandboxes `keep` names: the journals' networks, the netconf's delegates and `also`
        (networks no journal names any more: a skipped release's)."""
        live: dict[str, tuple[chain.NetworkConfig, list[dict[str, str]]]] = {}
        for key in self.store.keys():
            if key not in keep:
                continue
            journal = self.store.load(*key)
            for entry in journal.entries if journal else []:
                net = chain.load(entry.config, where=entry.name)
                _, atts = live.setdefault(net.name, (net, []))
                atts.append({"containerID": key[0], "ifname": entry.ifname})
        for net in (*self.conf.delegates, *also):
            live.setdefault(net.name, (net, []))
        return list(live.values())

    def gc_network(
        self, req: Request, net: chain.NetworkConfig, valid: Sequence[Mapping[str, str]]
    ) -> None:
        """One network's plugins GC (a network below CNI 1.1.0, or with disableGC, none)."""
        self.executor.gc(net, self.invocation(req, ""), valid)

    def retry_release(self, journal: Journal) -> list[tuple[Entry, CNIError]]:
        """DEL again the networks of `journal` whose release a DEL skipped (engine.releases;
        their sandbox is gone), as the sandbox's DEL ran them: the failures."""
        from multinet.engine.dynamic import request_for  # multinetd's GC only: not thin's path

        if not self.pod_netns.exists(journal.netns):
            journal.netns = ""  # gone with its pod: a DEL may leave CNI_NETNS empty
        req = request_for(journal, command="DEL")
        with self.sandbox(req, create=False, lenient=True) as box:
            return box.retry_release(journal)

    # -- STATUS --------------------------------------------------------------

    def require_indicator(self) -> None:
        """STATUS: NotAvailable while the readiness indicator file is missing."""
        indicator = self.conf.readiness_indicator_file
        if indicator and not os.path.exists(indicator):
            raise NotAvailable(f"readiness indicator file {indicator} does not exist")

    def status(self, req: Request, networks: Sequence[chain.NetworkConfig]) -> None:
        """STATUS of each of `networks` (those every pod gets): NotAvailable naming the
        first that is not ready."""
        for net in networks:
            try:
                self.executor.status(net, self.invocation(req, ""))
            except CNIError as e:
                raise NotAvailable(
                    f"network {net.name!r} is not ready: {e.msg}", e.details
                ) from None


def valid_attachments(config: Mapping[str, Any]) -> list[dict[str, str]]:
    raw = config.get(chain.GC_KEY, config.get("cni.dev/attachments"))
    if raw is None:
        raise InvalidConfig(f"GC needs {chain.GC_KEY!r} in the configuration")
    if not isinstance(raw, list) or not all(
        isinstance(a, dict)
        and isinstance(a.get("containerID"), str)
        and isinstance(a.get("ifname"), str)
        for a in raw
    ):
        raise InvalidConfig(
            f"{chain.GC_KEY} must be a list of {{containerID, ifname}} objects with string values"
        )
    return [{"containerID": a["containerID"], "ifname": a["ifname"]} for a in raw]


def _request_for(req: Request, container_id: str, ifname: str) -> Request:
    return replace(req, container_id=container_id, ifname=ifname, netns="")
