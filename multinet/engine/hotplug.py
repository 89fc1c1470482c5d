"""Change the networks of a running pod: attach and detach networks of a sandbox that
multinet ADDed (dynamic networks, docs/dynamic-networks.md).

Every change holds the sandbox's per-container lock, so it is serialized with the
runtime's ADD, DEL and CHECK of that sandbox; a DEL that got there first leaves no
journal, and the change does nothing. The journal is saved before each delegate runs
(an attachment as "adding", a detachment as "removing"), so a process killed mid-change
leaves a journal that the next reconcile (`recover`) or the sandbox's DEL completes. A
network whose ADD fails is rolled back alone; the others stay.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import CNIError, InvalidConfig, TryAgainLater, UnknownContainer
from multinet.cni.request import Request, parse_args
from multinet.config.netconf import NetConf
from multinet.engine import routes
from multinet.engine.engine import Engine
from multinet.engine.journal import ADDED, ADDING, REMOVING, Entry, Journal
from multinet.engine.plan import Attachment, Plan

log = logging.getLogger("multinet")


@dataclass(frozen=True)
class Change:
    """What makes a sandbox's networks what is asked: DEL `remove` (interface names of
    journaled networks), then ADD `add`."""

    add: tuple[Attachment, ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


@dataclass
class Outcome:
    added: list[Entry] = field(default_factory=list)
    removed: list[Entry] = field(default_factory=list)
    # (network name, interface, error): an ADD rolled back, or a DEL whose release failed
    # (its interface was still removed).
    failed: list[tuple[str, str, CNIError]] = field(default_factory=list)
    recovered: list[Entry] = field(default_factory=list)  # a change a crash interrupted
    # Networks whose DEL failed: kept in the journal as "removing" (their interface is
    # gone), for the next reconcile or the sandbox's DEL to release again.
    unreleased: list[Entry] = field(default_factory=list)
    saved: bool = False  # the journal holds this outcome

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.recovered)


# The cluster layer's part: the change the pod's annotation asks of this journal. Raises
# CNIError when the annotation cannot be honoured (nothing is changed then).
Replanner = Callable[[NetConf, Request, Journal], Change]


class ChangeReporter(Protocol):
    def changed(self, conf: NetConf, req: Request, journal: Journal, outcome: Outcome) -> None:
        """network-status and events after a change; may raise CNIError (the change
        stays: the next reconcile writes the status again)."""
        ...


def request_for(
    journal: Journal, fallback: Mapping[str, Any] | None = None, command: str = "ADD"
) -> Request:
    """The request a change runs its delegates with: the sandbox's, from its journal. A
    journal written before it kept its netconf gets `fallback` (the daemon's own)."""
    config = dict(journal.netconf or fallback or {})
    return Request(
        command=command,
        config=config,
        cni_version=journal.cni_version or str(config.get("cniVersion", "0.1.0")),
        container_id=journal.container_id,
        netns=journal.netns,
        ifname=journal.ifname,
        args_raw=journal.args,
        args=parse_args(journal.args, lenient=True),
        path=tuple(journal.path),
        # The delegates get this process's environment (PATH...), as the runtime's.
        env={k: v for k, v in os.environ.items() if not k.startswith("CNI_")},
    )


class Hotplug:
    """Attach, detach and reconcile the networks of sandboxes `engine` attached."""

    def __init__(
        self,
        engine: Engine,
        replanner: Replanner | None = None,
        reporter: ChangeReporter | None = None,
    ) -> None:
        self.engine = engine
        self.replanner = replanner
        self.reporter = reporter

    def reconcile(self, req: Request) -> Outcome | None:
        """Finish what a crash interrupted, then apply the change the replanner asks.
        None when the sandbox has no complete journal (deleted, or its ADD is not done);
        CNIError from the replanner when the pod's annotation cannot be honoured."""
        if self.replanner is None:
            raise InvalidConfig("no cluster source: the pod's networks cannot be read")
        replanner = self.replanner

        def step(journal: Journal, outcome: Outcome) -> None:
            self._apply(req, journal, replanner(self.engine.conf, req, journal), outcome)

        return self._locked(req, step)

    def attach(self, req: Request, attachments: Sequence[Attachment]) -> Outcome | None:
        change = Change(add=tuple(attachments))
        return self._locked(req, lambda j, out: self._apply(req, j, change, out))

    def detach(self, req: Request, ifnames: Sequence[str]) -> Outcome | None:
        change = Change(remove=tuple(ifnames))
        return self._locked(req, lambda j, out: self._apply(req, j, change, out))

    def check(self, req: Request, ifname: str) -> None:
        """CHECK the network on `ifname` as its ADD ran it (from the journal)."""
        with self.engine.store.lock(req.container_id, req.ifname, create=False):
            journal = self.engine.store.load(req.container_id, req.ifname)
            entries = journal.entries if journal is not None else []
            entry = next((e for e in entries if e.ifname == ifname and e.state == ADDED), None)
            if entry is None:
                raise UnknownContainer(f"container {req.container_id} has no interface {ifname}")
            self.engine._check_one(req, entry)

    def release(self, req: Request, net: NetworkConfig, ifname: str) -> None:
        """DEL `net` on `ifname`, which no journal records (attached by someone else),
        under the sandbox's lock."""
        with self.engine.store.lock(req.container_id, req.ifname, create=False):
            self.engine.executor.delete(net, self.engine._invocation(req, ifname), {}, None)

    # -- the steps -------------------------------------------------------------

    def _locked(self, req: Request, step: Callable[[Journal, Outcome], None]) -> Outcome | None:
        store = self.engine.store
        with store.lock(req.container_id, req.ifname, create=False):
            journal = store.load(req.container_id, req.ifname)
            if journal is None or not journal.complete:
                return None
            if not self.engine.pod_netns.exists(journal.netns):
                return None  # the sandbox is going away: its DEL removes everything
            outcome = Outcome()
            try:
                self._recover(req, journal, outcome)
                step(journal, outcome)
            except CNIError:
                # A refused change: what is owed from before (a status a crash or the API
                # kept from being written, a release just finished) is still done.
                self._save(journal, outcome)
                with contextlib.suppress(CNIError):
                    self._report(req, journal, outcome)
                raise
            finally:
                self._save(journal, outcome)
            self._report(req, journal, outcome)
        return outcome

    def _save(self, journal: Journal, outcome: Outcome) -> None:
        """Save what the change did, with the status still to write: a crash before the
        patch leaves the next reconcile to write it. Once only per change."""
        if outcome.saved or not (outcome.changed or outcome.failed or outcome.unreleased):
            return
        journal.status_pending |= outcome.changed and self.reporter is not None
        self.engine.store.save(journal, durable=self.engine.conf.journal_fsync)
        outcome.saved = True

    def _report(self, req: Request, journal: Journal, outcome: Outcome) -> None:
        """Tell the cluster, then record that it was told (and the device-info it read).
        A status write that fails is retried by the next reconcile (the journal still
        says `status_pending`); the change itself stays. Raises TryAgainLater then."""
        if self.reporter is None or not journal.status_pending:
            return
        try:
            self.reporter.changed(self.engine.conf, req, journal, outcome)
        except CNIError as e:
            raise TryAgainLater(
                f"the networks changed but network-status was not written: {e.msg}", e.details
            ) from None
        journal.status_pending = False
        self.engine.store.save(journal, durable=False)

    def _recover(self, req: Request, journal: Journal, outcome: Outcome) -> None:
        """A complete journal with networks still "adding" or "removing": a change that
        was interrupted, or a release that failed. Both are DELed (an ADD that may have
        half run is undone) and dropped; a still-wanted network is then added again by
        the change."""
        pending = [e for e in journal.entries if e.state in (ADDING, REMOVING)]
        if not pending:
            return
        log.warning(
            "%s: finishing an interrupted change of %s",
            req.container_id,
            ", ".join(f"{e.ifname} ({e.name})" for e in pending),
        )
        failures = self._release(req, journal, pending, outcome)
        failed = {id(e) for e, _ in failures}
        outcome.recovered.extend(e for e in pending if id(e) not in failed)
        outcome.failed.extend((e.name, e.ifname, error) for e, error in failures)

    def _release(
        self, req: Request, journal: Journal, entries: Sequence[Entry], outcome: Outcome
    ) -> list[tuple[Entry, CNIError]]:
        """DEL these networks (the leak guard removes what their DEL leaves in the pod);
        those released are dropped from the journal, those whose DEL failed stay as
        "removing" (`outcome.unreleased`). The failures."""
        failures = self.engine._undo(req, journal, only=entries)
        failed = {id(e) for e, _ in failures}
        for entry, _ in failures:
            entry.state = REMOVING
            outcome.unreleased.append(entry)
        _drop(journal, [e for e in entries if id(e) not in failed])
        return failures

    def _apply(self, req: Request, journal: Journal, change: Change, outcome: Outcome) -> None:
        store = self.engine.store
        for ifname in change.remove:
            entry = next((e for e in journal.entries if e.ifname == ifname), None)
            if entry is None or entry.default or entry.state == REMOVING:
                continue  # a "removing" one was retried by _recover in this change
            entry.state = REMOVING
            store.save(journal, durable=False)  # before its DEL: a crash leaves "removing"
            outcome.removed.append(entry)  # from the pod: the leak guard sees to it
            for _, error in self._release(req, journal, [entry], outcome):
                outcome.failed.append((entry.name, ifname, error))
        for att in change.add:
            self._attach_one(req, journal, att, outcome)

    def _attach_one(
        self, req: Request, journal: Journal, att: Attachment, outcome: Outcome
    ) -> None:
        taken = {e.ifname for e in journal.entries} | self.engine.pod_netns.interface_names(
            journal.netns
        )
        releasing = any(e.ifname == att.ifname and e.state == REMOVING for e in journal.entries)
        if releasing:
            error: CNIError = TryAgainLater(
                f"network {att.name!r}: interface name {att.ifname} is still held by a "
                "network whose release failed; it is retried"
            )
            outcome.failed.append((att.name, att.ifname, error))
            return
        if att.ifname in taken:
            error = InvalidConfig(
                f"network {att.name!r}: interface {att.ifname} already exists in the pod",
                "choose another 'interface' in the networks annotation",
            )
            outcome.failed.append((att.name, att.ifname, error))
            return
        if self.engine.preflight is not None:
            try:
                self.engine.preflight(Plan((att,)))  # as at ADD: the daemons it needs answer
            except CNIError as e:
                outcome.failed.append((att.name, att.ifname, e))
                return
        entry = Entry.planned(att)
        entry.added_at = time.time()
        journal.entries.append(entry)
        self.engine.store.save(journal, durable=False)  # before its delegate runs
        result = self.engine._add_one(req, att)
        if isinstance(result, dict):
            entry.result, entry.state = result, ADDED
            try:
                # `default-route: []` on this network: its default routes go, as at ADD.
                routes.apply_routes(
                    self.engine.pod_netns,
                    journal.netns,
                    Plan((att,)),
                    Journal(journal.container_id, journal.ifname, entries=[entry]),
                    result,
                )
            except CNIError as e:
                result = e
            else:
                outcome.added.append(entry)
                return
        log.warning("%s: ADD of %s (%s) failed: %s", req.container_id, att.name, att.ifname, result)
        self._release(req, journal, [entry], outcome)
        outcome.failed.append((att.name, att.ifname, result))


def _drop(journal: Journal, gone: Sequence[Entry]) -> None:
    ids = {id(e) for e in gone}  # identity: two entries may be equal
    journal.entries = [e for e in journal.entries if id(e) not in ids]
