"""One sandbox's networks, under its lock: the steps the verbs (meta.verbs) run.

`Engine.sandbox(req)` takes the sandbox's per-container lock and yields a Sandbox. Its
steps are the whole of what a request does to a pod's networks:

adding(plan)  journal every planned network, run the delegates, apply the routes; the
              block inside runs last (the status write), and anything raised before the
              block ends rolls everything back, in reverse
remove_all    DEL every network of a journal (the sandbox's DEL); a release it skips is
              recorded (engine.releases)
retry_release DEL again a gone sandbox's networks whose release was skipped
check         CHECK the journaled networks (or one of them)
attach        ADD one network to the running pod (a dynamic network), rolled back alone
detach        DEL one journaled network of the running pod
release       DEL a network no journal records (Multus's /delegate of a foreign one)
recover       finish a change of the running pod that a crash interrupted
save          journal what a change did
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

from multinet.cni import chain, result
from multinet.cni.errors import (
    AlreadyAttached,
    CNIError,
    DelegateTimedOut,
    InvalidConfig,
    IOFailure,
    TryAgainLater,
    UnknownContainer,
)
from multinet.cni.request import Request
from multinet.engine import dhcp, routes
from multinet.engine.delegates import each
from multinet.engine.journal import ADDED, ADDING, RELEASE_SKIPPED, REMOVING, Entry, Journal
from multinet.engine.plan import Attachment, Plan
from multinet.log import log
from multinet.record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from multinet.engine.dynamic import Outcome
    from multinet.engine.engine import Engine


class Sandbox:
    """The networks of one (container, ifname), its lock held (Engine.sandbox)."""

    def __init__(self, engine: Engine, req: Request, journal: Journal | None) -> None:
        self.engine = engine
        self.req = req
        self.journal = journal  # as found when the lock was taken (None: no record)
        self.result: dict[str, Any] = {}  # the cluster network's result, once added
        self._legacy: Journal | None = None  # another meta-plugin's record, if read

    def undo_crashed_add(self) -> None:
        """A new sandbox: refuse one that is attached; finish the rollback of an ADD that
        crashed midway."""
        stale, req = self.journal, self.req
        if stale is None:
            return
        if stale.complete:
            raise AlreadyAttached(
                f"container {req.container_id} already has networks attached on "
                f"{req.ifname}: DEL it before adding again"
            )
        self._undo(stale)
        self.engine.store.remove(req.container_id, req.ifname)
        self.journal = None

    # -- ADD -----------------------------------------------------------------

    @contextlib.contextmanager
    def adding(self, plan: Plan) -> Iterator[Journal]:
        """Journal the plan, run its delegates, apply its routes; then the block (the
        status write); then the journal is complete. Whatever is raised on the way, the
        block's own errors included, undoes what was started, in reverse."""
        self._check_free(plan)
        req, engine = self.req, self.engine
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
            engine.store.save(journal, durable=False)
            cluster_result = self._add_all(plan, journal, started)
            self.result = self._apply_routes(req.netns, plan, journal, cluster_result)
            yield journal
            journal.complete = True
            # Atomic (a crash of this process leaves the old or the new journal, whole);
            # durable only on request: after a power loss the pod's interfaces are gone,
            # and a DEL without a journal releases what the configuration names.
            engine.store.save(journal, durable=engine.conf.journal_fsync)
        except BaseException:
            failures = self._undo(journal, only=started)  # what it started, no more
            if any(entry.state == ADDED for entry, _ in failures):
                # A network that was added could not be removed (its IPAM release, say):
                # keep the record, the runtime's follow-up DEL (or the next ADD) retries.
                # The DEL of the network that failed its ADD failing too is no news.
                self._keep(journal)
            else:
                engine.store.remove(req.container_id, req.ifname)
            raise
        self.journal = journal

    def _apply_routes(
        self, netns_path: str, plan: Plan, journal: Journal, cluster_result: dict[str, Any]
    ) -> dict[str, Any]:
        """The routes the plan asks beyond its delegates (engine.routes); the cluster
        network's result as the runtime gets it."""
        todo = routes.route_plan(plan, journal)
        if not todo:
            return cluster_result
        self.engine.pod_netns.apply_routes(netns_path, todo)
        routes.drop_gone_defaults(journal, todo)
        cluster = journal.entries[0].result
        return cluster if cluster is not None else cluster_result

    def _keep(self, journal: Journal) -> None:
        try:
            self.engine.store.save(journal, durable=False)
        except CNIError as e:
            log.warning("the journal of a failed ADD could not be kept: %s", e)

    def _check_free(self, plan: Plan) -> None:
        present = self.engine.pod_netns.interface_names(self.req.netns)
        taken = [a.ifname for a in plan.attachments if a.ifname in present]
        if taken:
            raise InvalidConfig(
                f"interface name(s) {', '.join(taken)} already exist in {self.req.netns}",
                "choose another 'interface' in the networks annotation",
            )

    def _add_all(self, plan: Plan, journal: Journal, started: list[Entry]) -> dict[str, Any]:
        """ADD every network in plan order; with parallelAttach, the secondaries at once.
        `started` collects the entries whose delegates ran (what a rollback must DEL)."""
        pairs = list(zip(plan.attachments, journal.entries, strict=True))
        first, rest = pairs[:1], pairs[1:]
        if not first or not first[0][0].default:
            raise InvalidConfig("no cluster network in the plan")
        self._add_batch(first, started)
        if self.engine.conf.parallel_attach and len(rest) > 1:
            self._add_batch(rest, started)
        else:
            for pair in rest:
                self._add_batch([pair], started)
        cluster_result = journal.entries[0].result
        assert cluster_result is not None
        return cluster_result

    def _add_batch(self, batch: Sequence[tuple[Attachment, Entry]], started: list[Entry]) -> None:
        started.extend(entry for _, entry in batch)
        outcomes = each(lambda pair: self._add_one(pair[0]), batch, parallel=True)
        for (_, entry), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, dict):
                entry.result = outcome
                entry.state = ADDED
        # Not saved here: the final save carries the results; a crash before it leaves
        # entries marked "adding", which DEL handles the same.
        errors = [o for o in outcomes if isinstance(o, CNIError)]
        if errors:
            raise errors[0]  # the first in plan order, as sequential mode would report

    def _add_one(self, att: Attachment) -> dict[str, Any] | CNIError:
        context = f"network {att.name!r} ({att.ifname})"
        bound = dhcp.bound(self.engine.conf, att)
        inv = self.engine.invocation(self.req, att.ifname, extra_args=att.cni_args)
        if bound is not None and bound.seconds < inv.timeout:
            inv = replace(inv, timeout=bound.seconds)
        try:
            return self.engine.executor.add(att.network, inv, att.runtime_config)
        except DelegateTimedOut as e:
            if bound is None:
                return e.with_context(context)
            return bound.reached(e, inv.timeout).with_context(context)
        except CNIError as e:
            return (e if bound is None else bound.explain(e)).with_context(context)

    # -- DEL -----------------------------------------------------------------

    def legacy_journal(self) -> Journal | None:
        """What another meta-plugin (Multus) attached to this container, from its records;
        a record it cannot read is logged and DEL goes on as without one."""
        legacy, req = self.engine.legacy, self.req
        if legacy is None:
            return None
        try:
            self._legacy = legacy.load(req.container_id, req.ifname, req.netns, req.cni_version)
        except CNIError as e:
            log.warning("DEL %s: %s; going on without it", req.container_id, e)
            return None
        return self._legacy

    def remove_all(self, journal: Journal, *, record_skipped: bool = True) -> None:
        """The sandbox's DEL: every network of `journal`, in reverse; a failed release is
        logged and skipped (or TryAgainLater with retryDeleteOnError while the pod is),
        and recorded for GC when `record_skipped` (a journal the ADD wrote; not a DEL
        planned from a netconf that may be invalid, whose cniDir fell back to the default)."""
        engine, req = self.engine, self.req
        failures = self._undo(journal)
        if failures and engine.conf.retry_delete_on_error and engine.pod_netns.exists(req.netns):
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
            if record_skipped:
                self._owe(journal, entry, error)
        with contextlib.suppress(IOFailure):
            engine.store.remove(req.container_id, req.ifname)
        if journal is self._legacy and engine.legacy is not None:
            engine.legacy.remove(journal)

    def _owe(self, journal: Journal, entry: Entry, error: CNIError) -> None:
        """Record the skipped release for multinetd's GC to retry (engine.releases); a
        record that cannot be written is logged: the DEL goes on."""
        releases = self.engine.releases
        if releases is None:
            return
        try:
            releases.record(journal, entry, error)
        except CNIError as e:
            log.warning("DEL %s: the skipped release is not recorded: %s", journal.container_id, e)

    def retry_release(self, journal: Journal) -> list[tuple[Entry, CNIError]]:
        """DEL again a deleted sandbox's networks whose release was skipped: the failures."""
        return self._undo(journal)

    def _undo(
        self, journal: Journal, only: Sequence[Entry] | None = None
    ) -> list[tuple[Entry, CNIError]]:
        """DEL the journal's entries (or `only` those) in reverse; returns the failures.

        With parallelAttach the secondary networks are DELed at once, then the cluster
        network: they were independent when added, so they are when removed.
        """
        entries = journal.entries
        if only is not None:
            chosen = {id(e) for e in only}  # identity: two entries may be equal
            entries = [e for e in entries if id(e) in chosen]
        netns_path = journal.netns or self.req.netns
        rest = list(reversed(entries))
        last: list[Entry] = []
        if rest and rest[-1].default:
            last = [rest.pop()]
        ordered = rest + last
        outcomes = each(
            lambda e: self._del_one(e, netns_path), rest, self.engine.conf.parallel_attach
        )
        outcomes += [self._del_one(e, netns_path) for e in last]
        self._remove_leftovers(netns_path, entries)
        return [(e, o) for e, o in zip(ordered, outcomes, strict=True) if o is not None]

    def _remove_leftovers(self, netns_path: str, entries: Sequence[Entry]) -> None:
        """The leak guard: remove the interfaces these networks were given that are still
        in the pod after their DEL (the reference macvlan keeps its link when its IPAM
        fails, on ADD and on DEL). Best effort: a DEL must not fail on it."""
        pod_netns = self.engine.pod_netns
        if not entries or not pod_netns.exists(netns_path):
            return
        try:
            present = pod_netns.interface_names(netns_path)
            left = [e.ifname for e in entries if e.ifname in present]
            if left:
                names = ", ".join(f"{e.ifname} ({e.name})" for e in entries if e.ifname in left)
                log.warning("removing what the delegates left in %s: %s", netns_path, names)
                pod_netns.remove_links(netns_path, left)
        except CNIError as e:
            log.warning("leak guard: %s", e)

    def _del_one(self, entry: Entry, netns_path: str) -> CNIError | None:
        try:
            net = chain.load(entry.config, where=entry.name)
            inv = self.engine.invocation(self.req, entry.ifname, netns_path, entry.cni_args)
            self.engine.executor.delete(net, inv, entry.runtime_config, entry.result)
        except CNIError as e:
            log.warning("DEL of network %s (%s) failed: %s", entry.name, entry.ifname, e)
            return e
        return None

    # -- CHECK ---------------------------------------------------------------

    def check(self, ifname: str | None = None) -> None:
        """CHECK every journaled network (or the one on `ifname`) as its ADD ran it."""
        journal, req = self.journal, self.req
        if ifname is not None:
            entries = journal.entries if journal is not None else []
            entry = next((e for e in entries if e.ifname == ifname and e.state == ADDED), None)
            if entry is None:
                raise UnknownContainer(f"container {req.container_id} has no interface {ifname}")
            self._check_one(entry)
            return
        if journal is None or not journal.complete:
            raise UnknownContainer(
                f"container {req.container_id} has no networks attached on {req.ifname}"
            )
        for entry in journal.entries:
            if entry.state == ADDED:  # not a network a change of the running pod releases
                self._check_one(entry)

    def _check_one(self, entry: Entry) -> None:
        net = chain.load(entry.config, where=entry.name)
        prev = entry.result
        conf = self.engine.conf
        if entry.default and conf.prev_result is not None:
            # As in a flat conflist, the cluster network CHECKs against the runtime's
            # final result: plugins after multinet (tuning...) may have changed it.
            prev = result.convert(conf.prev_result, net.cni_version)
        try:
            inv = self.engine.invocation(self.req, entry.ifname, extra_args=entry.cni_args)
            self.engine.executor.check(net, inv, entry.runtime_config, prev)
        except CNIError as e:
            raise e.with_context(f"network {entry.name!r} ({entry.ifname})") from None

    # -- a change of the running pod (dynamic networks) ------------------------

    def attached(self) -> Journal | None:
        """The journal of a sandbox whose ADD is done and whose pod is still there; None
        otherwise (deleted, its ADD not done, or going away: its DEL removes everything)."""
        journal = self.journal
        if journal is None or not journal.complete:
            return None
        return journal if self.engine.pod_netns.exists(journal.netns) else None

    def recover(self, outcome: Outcome) -> None:
        """A complete journal with networks still "adding" or "removing": a change that
        was interrupted, or a release that failed. Both are DELed (an ADD that may have
        half run is undone) and dropped; a still-wanted network is then added again by
        the change."""
        journal = self._attached()
        pending = [e for e in journal.entries if e.state in (ADDING, REMOVING)]
        if not pending:
            return
        log.warning(
            "%s: finishing an interrupted change of %s",
            self.req.container_id,
            ", ".join(f"{e.ifname} ({e.name})" for e in pending),
        )
        failures = self._release(journal, pending, outcome)
        failed = {id(e) for e, _ in failures}
        outcome.recovered.extend(e for e in pending if id(e) not in failed)
        outcome.failed.extend((e.name, e.ifname, error) for e, error in failures)

    def detach(self, ifname: str, outcome: Outcome) -> None:
        """DEL the journaled network on `ifname` (not the cluster network; one whose
        release is pending was retried by `recover`)."""
        journal = self._attached()
        entry = next((e for e in journal.entries if e.ifname == ifname), None)
        if entry is None or entry.default or entry.state == REMOVING:
            return
        entry.state = REMOVING
        self.engine.store.save(journal, durable=False)  # before its DEL: a crash leaves "removing"
        outcome.removed.append(entry)  # from the pod: the leak guard sees to it
        for _, error in self._release(journal, [entry], outcome):
            outcome.failed.append((entry.name, ifname, error))

    def attach(self, att: Attachment, outcome: Outcome) -> None:
        """ADD one network to the running pod; a failure is rolled back alone and told
        in `outcome.failed`."""
        journal = self._attached()
        refusal = self._refusal(journal, att)
        if refusal is not None:
            outcome.failed.append((att.name, att.ifname, refusal))
            return
        entry = Entry.planned(att)
        entry.added_at = time.time()
        journal.entries.append(entry)
        self.engine.store.save(journal, durable=False)  # before its delegate runs
        added = self._add_one(att)
        if isinstance(added, dict):
            entry.result, entry.state = added, ADDED
            try:
                # `default-route: []` on this network: its default routes go, as at ADD.
                self._apply_routes(
                    journal.netns,
                    Plan((att,)),
                    Journal(journal.container_id, journal.ifname, entries=[entry]),
                    added,
                )
            except CNIError as e:
                added = e
            else:
                outcome.added.append(entry)
                return
        log.warning(
            "%s: ADD of %s (%s) failed: %s", self.req.container_id, att.name, att.ifname, added
        )
        self._release(journal, [entry], outcome)
        outcome.failed.append((att.name, att.ifname, added))

    def _refusal(self, journal: Journal, att: Attachment) -> CNIError | None:
        """Why `att` cannot be attached now: its interface name is taken, or (as at ADD)
        a daemon its plugins need does not answer."""
        if any(e.ifname == att.ifname and e.state == REMOVING for e in journal.entries):
            return TryAgainLater(
                f"network {att.name!r}: interface name {att.ifname} is still held by a "
                "network whose release failed; it is retried"
            )
        taken = {e.ifname for e in journal.entries}
        if att.ifname in taken | self.engine.pod_netns.interface_names(journal.netns):
            return InvalidConfig(
                f"network {att.name!r}: interface {att.ifname} already exists in the pod",
                "choose another 'interface' in the networks annotation",
            )
        try:
            self.engine.preflight(Plan((att,)))
        except CNIError as e:
            return e
        return None

    def _release(
        self, journal: Journal, entries: Sequence[Entry], outcome: Outcome
    ) -> list[tuple[Entry, CNIError]]:
        """DEL these networks (the leak guard removes what their DEL leaves in the pod);
        those released are dropped from the journal, those whose DEL failed stay as
        "removing" (`outcome.unreleased`). The failures."""
        failures = self._undo(journal, only=entries)
        failed = {id(e) for e, _ in failures}
        for entry, _ in failures:
            entry.state = REMOVING
            outcome.unreleased.append(entry)
        gone = {id(e) for e in entries if id(e) not in failed}  # identity: may be equal
        journal.entries = [e for e in journal.entries if id(e) not in gone]
        return failures

    def release(self, net: chain.NetworkConfig, ifname: str) -> None:
        """DEL `net` on `ifname`, which no journal records (attached by someone else)."""
        self.engine.executor.delete(net, self.engine.invocation(self.req, ifname), {}, None)

    def save(self, outcome: Outcome, *, report: bool) -> None:
        """Journal what the change did, with the status still to write when `report`: a
        crash before it is written leaves the next reconcile to write it. Once only per
        change."""
        if outcome.saved or not (outcome.changed or outcome.failed or outcome.unreleased):
            return
        journal = self._attached()
        journal.status_pending |= outcome.changed and report
        self.engine.store.save(journal, durable=self.engine.conf.journal_fsync)
        outcome.saved = True

    def reported(self) -> None:
        """The change's status was written: the journal says so."""
        journal = self._attached()
        journal.status_pending = False
        self.engine.store.save(journal, durable=False)

    def _attached(self) -> Journal:
        if self.journal is None:
            raise UnknownContainer(f"container {self.req.container_id} has no journal")
        return self.journal
