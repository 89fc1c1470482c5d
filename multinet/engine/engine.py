"""Run a plan: ADD/DEL/CHECK/GC/STATUS over the delegate networks, with the journal.

ADD records every planned delegate in the journal before running any and undoes what
it started (in reverse) if any step fails. DEL, CHECK and GC work from the journal
alone. All I/O goes through the seams in engine.ports, passed in by the caller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from multinet.cni import chain, result
from multinet.cni.errors import (
    AlreadyAttached,
    CNIError,
    DelegateTimedOut,
    InvalidConfig,
    IOFailure,
    NotAvailable,
    TryAgainLater,
    UnknownContainer,
)
from multinet.cni.exec import Invocation, Observer
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine import routes
from multinet.engine.delegates import each
from multinet.engine.journal import ADDED, RELEASE_SKIPPED, Entry, Journal
from multinet.engine.plan import Attachment, Plan, static_plan
from multinet.engine.ports import Executor, JournalStore, LegacyRecords, PodNetns

log = logging.getLogger("multinet")
READINESS_POLL = 0.1  # seconds between looks for the readiness indicator file

# What the cluster layer plugs in: the planner builds the plan; the reporter is told
# the outcome. `added` may raise CNIError (e.g. the status write failed): the ADD is
# then rolled back. `failed` and `deleted` are best effort and local (DEL makes no
# API request).
Planner = Callable[[NetConf, Request], Plan]
StatusNetworks = Callable[[NetConf], Sequence[chain.NetworkConfig]]
# Checks a plan before any of its delegates runs, on ADD only (e.g. that the daemons its
# plugins need answer: networks.dhcp.check); raises CNIError to refuse the ADD.
Preflight = Callable[[Plan], None]


def _as_is(error: CNIError) -> CNIError:
    return error


@dataclass(frozen=True)
class Bound:
    """A limit on one network's ADD tighter than delegateTimeout, and what reaching it
    means: `reached(timeout, seconds)` is the error reported instead of the bare timeout
    (networks.dhcp.bound: no DHCP server answered); `explain(error)` what the network's
    other failures are reported as (the delegate's message kept in it)."""

    seconds: float
    reached: Callable[[DelegateTimedOut, float], CNIError]
    explain: Callable[[CNIError], CNIError] = _as_is


# The bound of a network's ADD, or None (delegateTimeout alone).
AddBound = Callable[[NetConf, Attachment], Bound | None]


class Reporter(Protocol):
    def added(self, conf: NetConf, req: Request, plan: Plan, journal: Journal) -> None: ...

    def failed(self, conf: NetConf, req: Request, plan: Plan | None, error: CNIError) -> None: ...

    def deleted(self, conf: NetConf, req: Request, journal: Journal) -> None: ...


def default_planner(conf: NetConf, req: Request) -> Plan:
    return static_plan(conf.delegates, req.ifname, conf.runtime_config)


class Engine:
    def __init__(
        self,
        conf: NetConf,
        *,
        store: JournalStore,
        pod_netns: PodNetns,
        executor: Executor,
        planner: Planner = default_planner,
        reporter: Reporter | None = None,
        observer: Observer | None = None,
        status_networks: StatusNetworks | None = None,
        legacy: LegacyRecords | None = None,
        preflight: Preflight | None = None,
        add_bound: AddBound | None = None,
    ) -> None:
        self.conf = conf
        self.store = store
        self.pod_netns = pod_netns
        self.executor = executor
        self.planner = planner
        self.reporter = reporter
        self.observer = observer  # delegate latency (the daemon's metrics)
        # The networks every pod gets (STATUS checks them): the static delegates, unless
        # the cluster layer resolves clusterNetwork and defaultNetworks.
        self.status_networks = status_networks or (lambda conf: conf.delegates)
        # Another meta-plugin's records (Multus's cache), for DELs of the pods it attached.
        self.legacy = legacy
        self.preflight = preflight
        self.add_bound = add_bound

    # -- helpers -------------------------------------------------------------

    def _invocation(
        self,
        req: Request,
        ifname: str,
        netns_path: str | None = None,
        extra_args: Sequence[tuple[str, str]] = (),
    ) -> Invocation:
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

    def _undo(
        self, req: Request, journal: Journal, only: Sequence[Entry] | None = None
    ) -> list[tuple[Entry, CNIError]]:
        """DEL the journal's entries (or `only` those) in reverse; returns the failures.

        With parallelAttach the secondary networks are DELed at once, then the cluster
        network: they were independent when added, so they are when removed.
        """
        entries = journal.entries
        if only is not None:
            chosen = {id(e) for e in only}  # identity: two entries may be equal
            entries = [e for e in entries if id(e) in chosen]
        netns_path = journal.netns or req.netns
        rest = list(reversed(entries))
        last: list[Entry] = []
        if rest and rest[-1].default:
            last = [rest.pop()]
        parallel = self.conf.parallel_attach
        ordered = rest + last
        outcomes = each(lambda e: self._del_one(req, e, netns_path), rest, parallel)
        outcomes += [self._del_one(req, e, netns_path) for e in last]
        self._remove_leftovers(netns_path, entries)
        return [(e, o) for e, o in zip(ordered, outcomes, strict=True) if o is not None]

    def _remove_leftovers(self, netns_path: str, entries: Sequence[Entry]) -> None:
        """The leak guard: remove the interfaces these networks were given that are still
        in the pod after their DEL (the reference macvlan keeps its link when its IPAM
        fails, on ADD and on DEL). Best effort: a DEL must not fail on it."""
        if not entries or not self.pod_netns.exists(netns_path):
            return
        try:
            present = self.pod_netns.interface_names(netns_path)
            left = [e.ifname for e in entries if e.ifname in present]
            if left:
                names = ", ".join(f"{e.ifname} ({e.name})" for e in entries if e.ifname in left)
                log.warning("removing what the delegates left in %s: %s", netns_path, names)
                self.pod_netns.remove_links(netns_path, left)
        except CNIError as e:
            log.warning("leak guard: %s", e)

    def _del_one(self, req: Request, entry: Entry, netns_path: str) -> CNIError | None:
        try:
            net = chain.load(entry.config, where=entry.name)
            inv = self._invocation(req, entry.ifname, netns_path, entry.cni_args)
            self.executor.delete(net, inv, entry.runtime_config, entry.result)
        except CNIError as e:
            log.warning("DEL of network %s (%s) failed: %s", entry.name, entry.ifname, e)
            return e
        return None

    # -- ADD -----------------------------------------------------------------

    def add(self, req: Request) -> dict[str, Any]:
        plan: Plan | None = None
        try:
            self._wait_until_ready()
            with self.store.lock(req.container_id, req.ifname):
                self._clear_stale(req)
                plan = self.planner(self.conf, req)
                if self.preflight is not None:
                    self.preflight(plan)  # before the journal: nothing to undo
                cluster_result = self._add_locked(req, plan)
        except CNIError as e:
            if self.reporter is not None:
                self.reporter.failed(self.conf, req, plan, e)
            raise
        return result.convert(cluster_result, req.cni_version)

    def _wait_until_ready(self) -> None:
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

    def _clear_stale(self, req: Request) -> None:
        stale = self.store.load(req.container_id, req.ifname)
        if stale is None:
            return
        if stale.complete:
            raise AlreadyAttached(
                f"container {req.container_id} already has networks attached on "
                f"{req.ifname}: DEL it before adding again"
            )
        # A previous ADD crashed midway: finish its rollback first.
        self._undo(req, stale)
        self.store.remove(req.container_id, req.ifname)

    def _add_locked(self, req: Request, plan: Plan) -> dict[str, Any]:
        self._check_free(req, plan)
        # Every planned network is journaled before the first delegate starts: one save
        # instead of one per network, and a crash at any point still leaves a journal
        # naming all that may exist (DEL of a network never added is a no-op by the spec).
        journal = Journal(
            container_id=req.container_id,
            ifname=req.ifname,
            netns=req.netns,
            cni_version=req.cni_version,
            args=req.args_raw,
            pod=dict(plan.pod),
            entries=[Entry.planned(att) for att in plan.attachments],
            netconf={k: v for k, v in req.config.items() if k != "prevResult"},
            path=list(req.path),
        )
        started: list[Entry] = []
        try:
            self.store.save(journal, durable=False)
            cluster_result = self._add_all(req, plan, journal, started)
            cluster_result = routes.apply_routes(
                self.pod_netns, req.netns, plan, journal, cluster_result
            )
            if self.reporter is not None:
                self.reporter.added(self.conf, req, plan, journal)
            journal.complete = True
            # Atomic (a crash of this process leaves the old or the new journal, whole);
            # durable only on request: after a power loss the pod's interfaces are gone,
            # and a DEL without a journal releases what the configuration names.
            self.store.save(journal, durable=self.conf.journal_fsync)
        except BaseException:
            failures = self._undo(req, journal, only=started)  # what it started, no more
            if any(entry.state == ADDED for entry, _ in failures):
                # A network that was added could not be removed (its IPAM release, say):
                # keep the record, the runtime's follow-up DEL (or the next ADD) retries.
                # The DEL of the network that failed its ADD failing too is no news.
                self._keep(journal)
            else:
                self.store.remove(req.container_id, req.ifname)
            raise
        return cluster_result

    def _keep(self, journal: Journal) -> None:
        try:
            self.store.save(journal, durable=False)
        except CNIError as e:
            log.warning("the journal of a failed ADD could not be kept: %s", e)

    def _check_free(self, req: Request, plan: Plan) -> None:
        present = self.pod_netns.interface_names(req.netns)
        taken = [a.ifname for a in plan.attachments if a.ifname in present]
        if taken:
            raise InvalidConfig(
                f"interface name(s) {', '.join(taken)} already exist in {req.netns}",
                "choose another 'interface' in the networks annotation",
            )

    def _add_all(
        self, req: Request, plan: Plan, journal: Journal, started: list[Entry]
    ) -> dict[str, Any]:
        """ADD every network in plan order; with parallelAttach, the secondaries at once.
        `started` collects the entries whose delegates ran (what a rollback must DEL)."""
        pairs = list(zip(plan.attachments, journal.entries, strict=True))
        first, rest = pairs[:1], pairs[1:]
        if not first or not first[0][0].default:
            raise InvalidConfig("no cluster network in the plan")
        self._add_batch(req, first, started)
        if self.conf.parallel_attach and len(rest) > 1:
            self._add_batch(req, rest, started)
        else:
            for pair in rest:
                self._add_batch(req, [pair], started)
        cluster_result = journal.entries[0].result
        assert cluster_result is not None
        return cluster_result

    def _add_batch(
        self, req: Request, batch: Sequence[tuple[Attachment, Entry]], started: list[Entry]
    ) -> None:
        started.extend(entry for _, entry in batch)
        outcomes = each(lambda pair: self._add_one(req, pair[0]), batch, parallel=True)
        for (_, entry), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, dict):
                entry.result = outcome
                entry.state = ADDED
        # Not saved here: the final save carries the results; a crash before it leaves
        # entries marked "adding", which DEL handles the same.
        errors = [o for o in outcomes if isinstance(o, CNIError)]
        if errors:
            raise errors[0]  # the first in plan order, as sequential mode would report

    def _add_one(self, req: Request, att: Attachment) -> dict[str, Any] | CNIError:
        context = f"network {att.name!r} ({att.ifname})"
        bound = self.add_bound(self.conf, att) if self.add_bound is not None else None
        inv = self._invocation(req, att.ifname, extra_args=att.cni_args)
        if bound is not None and bound.seconds < inv.timeout:
            inv = replace(inv, timeout=bound.seconds)
        try:
            return self.executor.add(att.network, inv, att.runtime_config)
        except DelegateTimedOut as e:
            if bound is None:
                return e.with_context(context)
            return bound.reached(e, inv.timeout).with_context(context)
        except CNIError as e:
            return (e if bound is None else bound.explain(e)).with_context(context)

    # -- DEL -----------------------------------------------------------------

    def delete(self, req: Request) -> None:
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.store.lock(req.container_id, req.ifname, create=False))
                journal = self.store.load(req.container_id, req.ifname)
            except IOFailure as e:
                # No journal can live where none can be written (cniDir unusable): DEL
                # what the configuration names, as without a record; never fail on it.
                log.warning("DEL %s: the journal is out of reach (%s)", req.container_id, e)
                journal = None
            legacy = None
            if journal is None:
                journal = legacy = self._legacy_journal(req)
            if journal is None:
                journal = self._journal_without_record(req)
                if journal is None:
                    return
            failures = self._undo(req, journal)
            if failures and self.conf.retry_delete_on_error and self.pod_netns.exists(req.netns):
                raise TryAgainLater(
                    f"DEL of {len(failures)} network(s) failed; the runtime should retry",
                    "; ".join(str(f) for _, f in failures),
                )
            for entry, error in failures:
                entry.state = RELEASE_SKIPPED
                log.warning(
                    "DEL %s: network %s (%s): release skipped (%s); its interface is removed "
                    "and the DEL goes on",
                    req.container_id,
                    entry.name,
                    entry.ifname,
                    error.msg,
                )
            with contextlib.suppress(IOFailure):
                self.store.remove(req.container_id, req.ifname)
            if legacy is not None and self.legacy is not None:
                self.legacy.remove(legacy)
            if self.reporter is not None:
                self.reporter.deleted(self.conf, req, journal)

    def _legacy_journal(self, req: Request) -> Journal | None:
        """What another meta-plugin (Multus) attached to this container, from its records;
        a record it cannot read is logged and DEL goes on as without one."""
        if self.legacy is None:
            return None
        try:
            return self.legacy.load(req.container_id, req.ifname, req.netns, req.cni_version)
        except CNIError as e:
            log.warning("DEL %s: %s; going on without it", req.container_id, e)
            return None

    def _journal_without_record(self, req: Request) -> Journal | None:
        """No journal (never added, or state lost): DEL what the config would have added."""
        try:
            plan = self.planner(self.conf, req)
        except CNIError as e:
            log.info("DEL %s: no journal and no plan (%s): nothing to do", req.container_id, e)
            return None
        journal = Journal(container_id=req.container_id, ifname=req.ifname, netns=req.netns)
        journal.entries = [Entry.planned(att) for att in plan.attachments]
        return journal

    # -- CHECK ---------------------------------------------------------------

    def check(self, req: Request) -> None:
        # Under the container's lock: a change of the running pod (engine.hotplug) may be
        # adding or removing one of its networks.
        with self.store.lock(req.container_id, req.ifname, create=False):
            self._check_locked(req)

    def _check_locked(self, req: Request) -> None:
        journal = self.store.load(req.container_id, req.ifname)
        if journal is None or not journal.complete:
            raise UnknownContainer(
                f"container {req.container_id} has no networks attached on {req.ifname}"
            )
        for entry in journal.entries:
            if entry.state == ADDED:  # not a network a change of the running pod releases
                self._check_one(req, entry)

    def _check_one(self, req: Request, entry: Entry) -> None:
        """CHECK one journaled network as its ADD ran it."""
        net = chain.load(entry.config, where=entry.name)
        prev = entry.result
        if entry.default and self.conf.prev_result is not None:
            # As in a flat conflist, the cluster network CHECKs against the runtime's
            # final result: plugins after multinet (tuning...) may have changed it.
            prev = result.convert(self.conf.prev_result, net.cni_version)
        try:
            inv = self._invocation(req, entry.ifname, extra_args=entry.cni_args)
            self.executor.check(net, inv, entry.runtime_config, prev)
        except CNIError as e:
            raise e.with_context(f"network {entry.name!r} ({entry.ifname})") from None

    # -- GC ------------------------------------------------------------------

    def gc(self, req: Request) -> None:
        valid = valid_attachments(req.config)
        keep = {(v["containerID"], v["ifname"]) for v in valid}
        live: dict[str, tuple[chain.NetworkConfig, list[dict[str, str]]]] = {}
        for key in self.store.keys():
            stale_req = _request_for(req, *key)
            if key not in keep:
                log.info("GC: removing stale attachments of %s/%s", *key)
                self.delete(stale_req)
                continue
            journal = self.store.load(*key)
            for entry in journal.entries if journal else []:
                net = chain.load(entry.config, where=entry.name)
                _, atts = live.setdefault(net.name, (net, []))
                atts.append({"containerID": key[0], "ifname": entry.ifname})
        for net in self.conf.delegates:
            live.setdefault(net.name, (net, []))
        inv = self._invocation(req, "")
        for net, atts in live.values():
            self.executor.gc(net, inv, atts)

    # -- STATUS --------------------------------------------------------------

    def status(self, req: Request) -> None:
        indicator = self.conf.readiness_indicator_file
        if indicator and not os.path.exists(indicator):
            raise NotAvailable(f"readiness indicator file {indicator} does not exist")
        # Every pod gets these networks: ADD needs them all.
        try:
            networks = self.status_networks(self.conf)
        except CNIError as e:
            raise NotAvailable(
                f"the cluster network is not available: {e.msg}", e.details
            ) from None
        for net in networks:
            try:
                self.executor.status(net, self._invocation(req, ""))
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
