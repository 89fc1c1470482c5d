"""The verbs of dynamic networks: change the networks of a running pod that multinet
ADDed (docs/dynamic-networks.md), as its annotation asks or as a Multus /delegate
request asks.

Every change holds the sandbox's per-container lock, so it is serialized with the
runtime's ADD, DEL and CHECK of that sandbox; a DEL that got there first leaves no
journal, and the change does nothing. The journal is saved before each delegate runs
(an attachment as "adding", a detachment as "removing"), so a process killed mid-change
leaves a journal that the next reconcile (`recover`) or the sandbox's DEL completes. A
network whose ADD fails is rolled back alone; the others stay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Protocol

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import CNIError, InvalidConfig, TryAgainLater
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine.dynamic import Change, Outcome
from multinet.engine.engine import Engine
from multinet.engine.journal import Journal
from multinet.engine.plan import Attachment
from multinet.engine.sandbox import Sandbox

# The cluster side's part: the change the pod's annotation asks of this journal
# (networks.dynamic.PodChanges). Raises CNIError when the annotation cannot be honoured
# (nothing is changed then).
Replanner = Callable[[NetConf, Request, Journal], Change]


class ChangeReporter(Protocol):
    def changed(self, conf: NetConf, req: Request, journal: Journal, outcome: Outcome) -> None:
        """network-status and events after a change; may raise CNIError (the change
        stays: the next reconcile writes the status again)."""
        ...


class Dynamic:
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
        return self.change(req, lambda journal: replanner(self.engine.conf, req, journal))

    def attach(self, req: Request, attachments: Sequence[Attachment]) -> Outcome | None:
        return self.change(req, lambda journal: Change(add=tuple(attachments)))

    def detach(self, req: Request, ifnames: Sequence[str]) -> Outcome | None:
        return self.change(req, lambda journal: Change(remove=tuple(ifnames)))

    def check(self, req: Request, ifname: str) -> None:
        """CHECK the network on `ifname` as its ADD ran it (from the journal)."""
        with self.engine.sandbox(req, create=False) as sandbox:
            sandbox.check(ifname)

    def release(self, req: Request, net: NetworkConfig, ifname: str) -> None:
        """DEL `net` on `ifname`, which no journal records (attached by someone else),
        under the sandbox's lock."""
        with self.engine.sandbox(req, create=False) as sandbox:
            sandbox.release(net, ifname)

    def change(self, req: Request, asked: Callable[[Journal], Change]) -> Outcome | None:
        """One change of a running pod's networks: what a crash left undone, then what is
        `asked`, saved, then told to the cluster."""
        with self.engine.sandbox(req, create=False) as sandbox:
            journal = sandbox.attached()
            if journal is None:
                return None
            outcome = Outcome()
            try:
                sandbox.recover(outcome)
                change = asked(journal)
                for ifname in change.remove:
                    sandbox.detach(ifname, outcome)
                for att in change.add:
                    sandbox.attach(att, outcome)
            except CNIError:
                # A refused change: what is owed from before (a status a crash or the API
                # kept from being written, a release just finished) is still done.
                sandbox.save(outcome, report=self.reporter is not None)
                with contextlib.suppress(CNIError):
                    self._report(req, sandbox, journal, outcome)
                raise
            finally:
                sandbox.save(outcome, report=self.reporter is not None)
            self._report(req, sandbox, journal, outcome)
        return outcome

    def _report(self, req: Request, sandbox: Sandbox, journal: Journal, outcome: Outcome) -> None:
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
        sandbox.reported()
