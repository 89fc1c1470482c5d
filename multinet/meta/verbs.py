"""The CNI verbs of the meta-plugin, each told top-down: ADD, DEL, CHECK, GC, STATUS.

Thin mode (thin.main) and the daemon (daemon.service) both answer a request through
these, as Multus's thin binary and its daemon both call `CmdAdd`. Each verb reads the
pod's networks from the cluster side (the planner, networks.planner), runs the engine's
steps in order (engine.Engine, engine.sandbox.Sandbox) and tells the cluster what came
of it (the reporter, networks.reporter). The engine calls nothing back.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence

from multinet.cni import result
from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import CNIError, NotAvailable
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine.engine import Engine, valid_attachments
from multinet.engine.journal import Entry, Journal
from multinet.engine.plan import Plan, static_plan
from multinet.log import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # the protocols are mypy's: at run time, plain classes


class Planner(Protocol):
    """A container's networks: its plan, and the networks every pod gets."""

    def __call__(self, conf: NetConf, req: Request) -> Plan: ...

    def status_networks(self, conf: NetConf) -> Sequence[NetworkConfig]: ...


class Reporter(Protocol):
    """Told the outcome. `added` may raise CNIError (the status write failed): the ADD
    is then rolled back. `failed` and `deleted` are best effort and local (DEL makes no
    API request)."""

    def added(self, conf: NetConf, req: Request, plan: Plan, journal: Journal) -> None: ...

    def failed(self, conf: NetConf, req: Request, plan: Plan | None, error: CNIError) -> None: ...

    def deleted(self, conf: NetConf, req: Request, journal: Journal) -> None: ...


class StaticPlanner:
    """The netconf's `delegates` alone (no cluster source): the first is the cluster
    network on CNI_IFNAME, the rest net1, net2..."""

    def __call__(self, conf: NetConf, req: Request) -> Plan:
        return static_plan(conf.delegates, req.ifname, conf.runtime_config)

    def status_networks(self, conf: NetConf) -> Sequence[NetworkConfig]:
        return conf.delegates


class Silent:
    """The reporter without a cluster: nobody to tell."""

    def added(self, conf: NetConf, req: Request, plan: Plan, journal: Journal) -> None:
        pass

    def failed(self, conf: NetConf, req: Request, plan: Plan | None, error: CNIError) -> None:
        pass

    def deleted(self, conf: NetConf, req: Request, journal: Journal) -> None:
        pass


class Verbs:
    """The verbs for one netconf, over one engine."""

    def __init__(
        self,
        engine: Engine,
        planner: Planner | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.engine = engine
        self.conf = engine.conf
        self.planner: Planner = planner or StaticPlanner()
        self.reporter: Reporter = reporter or Silent()

    def run(self, req: Request) -> dict[str, Any] | None:
        """The verb of `req.command` (the dispatcher has answered VERSION)."""
        if req.command == "ADD":
            return self.add(req)
        if req.command == "DEL":
            self.delete(req)
        elif req.command == "CHECK":
            self.check(req)
        elif req.command == "GC":
            self.gc(req)
        elif req.command == "STATUS":
            self.status(req)
        return None

    def add(self, req: Request) -> dict[str, Any]:
        plan: Plan | None = None
        try:
            self.engine.wait_until_ready()  # the readiness indicator file
            with self.engine.sandbox(req) as sandbox:  # locked; a crashed ADD's leftovers undone
                plan = self.planner(self.conf, req)  # the pod, its annotations, their NADs
                self.engine.preflight(plan)  # the daemons its plugins need answer
                with sandbox.adding(plan) as journal:  # journal, delegates, routes
                    self.reporter.added(self.conf, req, plan, journal)  # network-status
        except CNIError as e:
            self.reporter.failed(self.conf, req, plan, e)  # an event on the pod
            raise
        return result.convert(sandbox.result, req.cni_version)

    def delete(self, req: Request) -> None:
        with self.engine.sandbox(req, create=False, lenient=True) as sandbox:
            journal = sandbox.journal or sandbox.legacy_journal()
            owed = journal is not None  # a planned DEL records no skipped release: its
            journal = journal or self._planned(req)  # netconf may be invalid (defaults)
            if journal is None:
                return
            sandbox.remove_all(journal, record_skipped=owed)
            self.reporter.deleted(self.conf, req, journal)  # device-info, local records

    def collect(self, req: Request, *, grace: float | None = None) -> str:
        """GC's DEL of a sandbox that is gone: what its journal records, as the runtime's
        DEL runs it (cached results; a skipped release recorded; the reporter told). No
        plan is made without a journal: "gone" when there is none (a DEL came first).

        `grace` (multinetd's GC, which chose the sandbox before taking its lock): the lock
        is not waited for (journal.SandboxBusy: an ADD or a DEL is running), and a journal
        written less than `grace` seconds ago, by an ADD that finished meanwhile, is
        left alone: "young". Else "deleted"."""
        wait = grace is None
        with self.engine.sandbox(req, create=False, lenient=True, wait=wait) as sandbox:
            journal = sandbox.journal
            if journal is None:
                return "gone"
            written = self.engine.journal_written(req)
            if grace is not None and written is not None and time.time() - written < grace:
                return "young"
            sandbox.remove_all(journal)
            self.reporter.deleted(self.conf, req, journal)
        return "deleted"

    # -- multinetd's GC (daemon.gc): the engine's steps it runs outside a CNI request --

    def gc_targets(
        self, keep: Collection[tuple[str, str]], also: Sequence[NetworkConfig] = ()
    ) -> list[tuple[NetworkConfig, list[dict[str, str]]]]:
        """The secondary networks a GC is owed to, each with its journaled attachments
        among `keep` (never the cluster network: engine.Engine.gc_targets)."""
        return self.engine.gc_targets(keep, also, secondary_only=True)

    def gc_network(
        self, req: Request, net: NetworkConfig, valid: Sequence[Mapping[str, str]]
    ) -> None:
        self.engine.gc_network(req, net, valid)

    def retry_release(self, journal: Journal) -> list[tuple[Entry, CNIError]]:
        """DEL again the networks whose release a DEL skipped: the failures."""
        return self.engine.retry_release(journal)

    def _planned(self, req: Request) -> Journal | None:
        """No journal (never added, or state lost): DEL what the config would have added."""
        try:
            plan = self.planner(self.conf, req)
        except CNIError as e:
            log.info("DEL %s: no journal and no plan (%s): nothing to do", req.container_id, e)
            return None
        journal = Journal(container_id=req.container_id, ifname=req.ifname, netns=req.netns)
        journal.entries = [Entry.planned(att) for att in plan.attachments]
        return journal

    def check(self, req: Request) -> None:
        # Under the container's lock: a change of the running pod (meta.dynamic) may be
        # adding or removing one of its networks.
        with self.engine.sandbox(req, create=False) as sandbox:
            sandbox.check()

    def gc(self, req: Request) -> None:
        valid = valid_attachments(req.config)
        for stale in self.engine.stale(req, valid):
            log.info("GC: removing stale attachments of %s/%s", stale.container_id, stale.ifname)
            self.collect(stale)
        self.engine.gc(req, valid)

    def status(self, req: Request) -> None:
        self.engine.require_indicator()
        # Every pod gets these networks: ADD needs them all.
        try:
            networks = self.planner.status_networks(self.conf)
        except CNIError as e:
            raise NotAvailable(
                f"the cluster network is not available: {e.msg}", e.details
            ) from None
        self.engine.status(req, networks)
