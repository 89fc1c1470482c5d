"""Multus's `POST /delegate`: the requests of multus-dynamic-networks-controller.

The controller finds a running pod's sandbox and asks the daemon to ADD (or DEL) one
network on one interface of it: CNI_CONTAINERID and CNI_NETNS are the sandbox's,
CNI_IFNAME the new interface, the config is the NAD's, and `interfaceAttributes` carry
the element's ips, mac and cni-args. As multus-daemon, multinetd runs that one delegate
and answers its result; the controller writes network-status itself. Unlike Multus, the
network joins the sandbox's journal (origin "delegate"), so the sandbox's DEL removes it
too, and a restarted daemon knows it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from multinet.cni import chain, result
from multinet.cni.errors import InvalidEnvironment, UnknownContainer
from multinet.cni.request import Request
from multinet.config import netconf
from multinet.daemon.service import CNIService
from multinet.engine.dynamic import Outcome, request_for
from multinet.engine.journal import FileJournalStore, Journal
from multinet.meta import dispatch
from multinet.meta.dynamic import Dynamic
from multinet.networks.dynamic import delegate_attachment

COMMANDS = ("ADD", "DEL", "CHECK")


class DelegateService:
    def __init__(self, store: FileJournalStore, service: CNIService) -> None:
        self.store = store
        self.service = service

    def serve(
        self, env: Mapping[str, str], stdin: bytes, attributes: Mapping[str, Any]
    ) -> tuple[int, str]:
        """(exit code, stdout) as a CNI request's: the delegate's result or error JSON."""
        out = io.StringIO()
        code = dispatch.run(env, stdin, out, lambda req: self._handle(req, attributes))
        return code, out.getvalue()

    def _handle(self, req: Request, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        if req.command not in COMMANDS:
            raise InvalidEnvironment(
                f"/delegate serves {', '.join(COMMANDS)}, not CNI_COMMAND {req.command}"
            )
        dispatch.check_request(req)
        sandbox = self._sandbox(req.container_id)
        sreq = request_for(sandbox, self.service.own_netconf(sandbox.cni_version))
        engine = self.service.verbs(netconf.load(sreq.config), sreq).engine
        dynamic = Dynamic(engine)
        net = chain.load(req.config, where="the /delegate request's config")
        if req.command == "ADD":
            att = delegate_attachment(
                net,
                req.ifname,
                sandbox.pod.get("namespace", ""),
                attributes,
                engine.conf.runtime_config,
            )
            outcome = _done(dynamic.attach(sreq, [att]), req)
            _raise_failure(outcome, req.ifname)
            (added,) = (e for e in outcome.added if e.ifname == req.ifname)
            return result.convert(added.result or {}, req.cni_version)
        if req.command == "CHECK":
            dynamic.check(sreq, req.ifname)
        elif any(e.ifname == req.ifname for e in sandbox.entries):
            detached = dynamic.detach(sreq, [req.ifname])  # None: the sandbox went: done
            if detached is not None:
                _raise_failure(detached, req.ifname)  # as multus-daemon: the caller retries
        else:  # not ours (attached before multinet, say): its delegate's DEL, as Multus
            dynamic.release(sreq, net, req.ifname)
        return None

    def _sandbox(self, container_id: str) -> Journal:
        """The journal of the sandbox multinet attached with this container ID."""
        for journal in self.store.by_container(container_id):
            if journal.complete:
                return journal
        raise UnknownContainer(
            f"container {container_id} has no networks multinet attached: /delegate changes "
            "the networks of sandboxes multinet added"
        )


def _done(outcome: Outcome | None, req: Request) -> Outcome:
    if outcome is None:  # deleted between our look and the lock
        raise UnknownContainer(f"container {req.container_id} was deleted")
    return outcome


def _raise_failure(outcome: Outcome, ifname: str) -> None:
    """The error of this request's interface, if it failed (not another's a recovery
    retried in the same change)."""
    for _, failed, error in outcome.failed:
        if failed == ifname:
            raise error
