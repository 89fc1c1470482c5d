"""Changes of a running pod's networks (meta.dynamic) on the engine's fake seams: the
journal before each delegate, one failed network rolled back alone, a kill -9 at each
step then the next reconcile or the sandbox's DEL, the status write retried."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from multinet.cni import chain
from multinet.cni.errors import CNIError, DelegateError, InvalidConfig, TryAgainLater
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine.dynamic import Change, Outcome, request_for
from multinet.engine.journal import ADDED, ADDING, REMOVING, Journal
from multinet.engine.plan import ANNOTATION, Attachment, Passengers
from multinet.meta.dynamic import Dynamic
from multinet.record import replace
from tests.unit.engine.fakes import Crash, World
from tests.unit.engine.test_engine import NETNS, Host, conf, host, request

# The sandbox: the cluster network (eth0) and `a` (net1).
SANDBOX = ("cluster", "a")


def network(name: str) -> Attachment:
    net = chain.load({"cniVersion": "1.0.0", "name": name, "type": "fake"})
    return Attachment(name=f"default/{name}", network=net, ifname="", k8s=Passengers(ANNOTATION))


def attach(name: str, ifname: str) -> Attachment:
    att = network(name)
    return Attachment(att.name, att.network, ifname, k8s=Passengers(ANNOTATION))


class Reporter:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.fail: CNIError | None = None

    def changed(self, conf: NetConf, req: Request, journal: Journal, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.fail is not None:
            raise self.fail


def sandbox(world: World | None = None) -> tuple[Host, Request]:
    h = host(conf(networks=SANDBOX), world)
    h.verbs.add(request("ADD"))
    journal = h.store.load("c1", "eth0")
    assert journal is not None
    h.executor.calls.clear()
    h.store.saves.clear()
    return h, request_for(journal)


def reconcile(h: Host, change: Change, reporter: Any = None) -> Outcome | None:
    return Dynamic(h.verbs.engine, lambda conf, req, journal: change, reporter).reconcile(
        request_for(h.store.load("c1", "eth0") or Journal("c1", "eth0"))
    )


def states(h: Host) -> list[tuple[str, str]]:
    journal = h.store.load("c1", "eth0")
    assert journal is not None
    return [(e.ifname, e.state) for e in journal.entries]


def test_the_sandboxs_request_is_rebuilt_from_its_journal() -> None:
    _, req = sandbox()
    assert (req.container_id, req.netns, req.ifname, req.path) == (
        "c1",
        NETNS,
        "eth0",
        ("/opt/cni/bin",),
    )
    assert req.config == request("ADD").config  # the netconf the ADD ran with


def test_a_change_removes_then_adds_and_journals_before_each_delegate() -> None:
    h, _ = sandbox()
    out = reconcile(h, Change(add=(attach("b", "net2"), attach("c", "data1")), remove=("net1",)))
    assert out is not None
    assert [e.ifname for e in out.removed] == ["net1"]
    assert [e.ifname for e in out.added] == ["net2", "data1"]
    assert [(c.command, c.ifname) for c in h.executor.calls] == [
        ("DEL", "net1"),
        ("ADD", "net2"),
        ("ADD", "data1"),
    ]
    assert [states for _, states, _, _ in h.store.saves] == [
        [ADDED, REMOVING],  # before net1's DEL
        [ADDED, ADDING],  # before net2's ADD
        [ADDED, ADDED, ADDING],  # before data1's ADD
        [ADDED, ADDED, ADDED],
    ]
    assert h.world.pods[NETNS] == {"eth0", "net2", "data1"}
    journal = h.store.load("c1", "eth0")
    assert journal is not None and journal.complete
    assert [e.added_at is not None for e in journal.entries] == [False, True, True]


def test_a_failed_network_is_rolled_back_alone_and_the_others_stay() -> None:
    h, _ = sandbox()
    h.executor.fail[("ADD", "b")] = DelegateError("b: no addresses left")
    out = reconcile(h, Change(add=(attach("b", "net2"), attach("c", "net3"))))
    assert out is not None
    assert [(name, ifname, e.msg) for name, ifname, e in out.failed] == [
        ("default/b", "net2", "network 'default/b' (net2): b: no addresses left")
    ]
    assert [e.ifname for e in out.added] == ["net3"]
    assert ("DEL", "b") in [(c.command, c.network) for c in h.executor.calls]  # rolled back
    assert states(h) == [("eth0", ADDED), ("net1", ADDED), ("net3", ADDED)]
    assert h.world.pods[NETNS] == {"eth0", "net1", "net3"}


def test_an_interface_name_already_in_the_pod_is_refused_before_its_delegate() -> None:
    h, _ = sandbox(World(pods={NETNS: {"data1"}}))
    out = reconcile(h, Change(add=(attach("b", "net1"), attach("c", "data1"))))
    assert out is not None
    assert sorted(ifname for _, ifname, _ in out.failed) == ["data1", "net1"]
    assert h.executor.calls == []


def test_no_journal_or_an_unfinished_add_means_nothing_to_change() -> None:
    h = host(conf(networks=SANDBOX))
    asked: list[Journal] = []
    hot = Dynamic(h.verbs.engine, lambda conf, req, journal: asked.append(journal) or Change())
    assert hot.reconcile(request_for(Journal("c1", "eth0", netns=NETNS))) is None
    assert asked == [] and h.executor.calls == []


@pytest.mark.parametrize("step", [("ADD", "b"), ("DEL", "a")])
def test_a_kill_mid_change_is_finished_by_the_next_reconcile(step: tuple[str, str]) -> None:
    h, _ = sandbox()
    h.executor.crash_on = step
    with pytest.raises(Crash):
        reconcile(h, Change(add=(attach("b", "net2"),), remove=("net1",)))
    assert h.executor.crashed is not None
    after = host(conf(networks=SANDBOX), h.executor.crashed)
    pending = REMOVING if step[0] == "DEL" else ADDING
    assert pending in [s for _, s in states(after)]
    out = reconcile(after, Change())
    assert out is not None
    assert [e.state for e in out.recovered] == [pending]
    assert after.executor.of("DEL") == [step[1]]  # the interrupted one, DELed
    assert ADDING not in [s for _, s in states(after)]
    assert REMOVING not in [s for _, s in states(after)]


def test_the_sandboxs_del_after_a_kill_mid_change_removes_everything() -> None:
    h, _ = sandbox()
    h.executor.crash_on = ("ADD", "b")
    with pytest.raises(Crash):
        reconcile(h, Change(add=(attach("b", "net2"),)))
    assert h.executor.crashed is not None
    after = host(conf(networks=SANDBOX), h.executor.crashed)
    after.verbs.delete(request("DEL"))
    assert sorted(after.executor.of("DEL")) == ["a", "b", "cluster"]
    assert after.world.journals == {}


def test_a_failed_status_write_is_retried_by_the_next_reconcile() -> None:
    h, _ = sandbox()
    reporter = Reporter()
    reporter.fail = TryAgainLater("the API server is unreachable")
    with pytest.raises(TryAgainLater):
        reconcile(h, Change(add=(attach("b", "net2"),)), reporter)
    journal = h.store.load("c1", "eth0")
    assert journal is not None and journal.status_pending
    assert states(h)[-1] == ("net2", ADDED)  # the change stays
    reporter.fail = None
    out = reconcile(h, Change(), reporter)  # nothing to change, but the status to write
    assert out is not None and not out.changed
    assert len(reporter.outcomes) == 2
    journal = h.store.load("c1", "eth0")
    assert journal is not None and not journal.status_pending
    reconcile(h, Change(), reporter)
    assert len(reporter.outcomes) == 2  # nothing changed, nothing pending: not told


def test_the_cluster_network_is_never_detached() -> None:
    h, req = sandbox()
    out = Dynamic(h.verbs.engine).detach(req, ["eth0"])
    assert out is not None and out.removed == []
    assert h.executor.calls == []


def test_a_sandbox_whose_netns_is_gone_is_left_to_its_del() -> None:
    h, _ = sandbox()
    del h.world.pods[NETNS]
    asked: list[Journal] = []
    hot = Dynamic(h.verbs.engine, lambda conf, req, journal: asked.append(journal) or Change())
    assert hot.reconcile(request_for(h.store.load("c1", "eth0") or Journal("c1", "eth0"))) is None
    assert asked == [] and h.executor.calls == []


def test_a_failed_preflight_refuses_that_network_before_its_delegate() -> None:
    h, _ = sandbox()
    h.verbs.engine.probe = lambda path: "connection refused"
    dhcp = {"type": "fake", "ipam": {"type": "dhcp", "daemonSocketPath": "/run/b.sock"}}
    b = replace(
        attach("b", "net2"), network=chain.load({"cniVersion": "1.0.0", "name": "b", **dhcp})
    )
    out = reconcile(h, Change(add=(b, attach("c", "net3"))))
    assert out is not None
    assert [(ifname, e.code, e.msg) for _, ifname, e in out.failed] == [
        (
            "net2",
            TryAgainLater.code,
            "the DHCP client daemon is not running: network 'default/b' needs /run/b.sock "
            "(connection refused)",
        )
    ]
    assert [(c.command, c.ifname) for c in h.executor.calls] == [("ADD", "net3")]
    assert states(h) == [("eth0", ADDED), ("net1", ADDED), ("net3", ADDED)]


def test_a_removal_whose_release_fails_stays_removing_until_a_reconcile_releases_it() -> None:
    h, _ = sandbox()
    h.executor.fail[("DEL", "a")] = DelegateError("a: the IPAM store is unreachable")
    out = reconcile(h, Change(remove=("net1",)))
    assert out is not None
    assert [e.ifname for e in out.removed] == ["net1"]
    assert [e.ifname for e in out.unreleased] == ["net1"]
    assert [ifname for _, ifname, _ in out.failed] == ["net1"]
    assert states(h) == [("eth0", ADDED), ("net1", REMOVING)]  # kept for the retry
    del h.executor.fail[("DEL", "a")]
    out = reconcile(h, Change())
    assert out is not None and [e.ifname for e in out.recovered] == ["net1"]
    assert states(h) == [("eth0", ADDED)]
    assert h.executor.of("DEL") == ["a", "a"]


def test_a_kill_before_the_status_write_leaves_it_to_the_next_reconcile() -> None:
    h, _ = sandbox()

    class Dies(Reporter):
        def changed(self, conf: NetConf, req: Request, journal: Journal, outcome: Outcome) -> None:
            h.executor.crashed = h.world.snapshot()
            raise Crash()

    with pytest.raises(Crash):
        reconcile(h, Change(add=(attach("b", "net2"),)), Dies())
    assert h.executor.crashed is not None
    after = host(conf(networks=SANDBOX), h.executor.crashed)
    journal = after.store.load("c1", "eth0")
    assert journal is not None and journal.status_pending
    reporter = Reporter()
    out = reconcile(after, Change(), reporter)
    assert out is not None and not out.changed
    assert len(reporter.outcomes) == 1  # the status written after all
    journal = after.store.load("c1", "eth0")
    assert journal is not None and not journal.status_pending


def test_check_waits_for_a_change_in_progress() -> None:
    h, req = sandbox()
    held = threading.Event()
    release = threading.Event()

    def slow(conf: NetConf, r: Request, journal: Journal) -> Change:
        held.set()
        release.wait(5)
        return Change(add=(attach("b", "net2"),))

    changing = threading.Thread(target=Dynamic(h.verbs.engine, slow).reconcile, args=(req,))
    changing.start()
    held.wait(5)
    checked = threading.Thread(target=h.verbs.check, args=(request("CHECK"),))
    checked.start()
    checked.join(0.2)
    assert checked.is_alive()  # blocked on the sandbox's lock
    release.set()
    changing.join(5)
    checked.join(5)
    assert [c.command for c in h.executor.calls] == ["ADD", "CHECK", "CHECK", "CHECK"]


def test_a_refused_change_still_writes_the_status_owed_from_before() -> None:
    h, _ = sandbox()
    reporter = Reporter()
    reporter.fail = TryAgainLater("the API server is unreachable")
    with pytest.raises(TryAgainLater):
        reconcile(h, Change(add=(attach("b", "net2"),)), reporter)
    reporter.fail = None

    def refuses(conf: NetConf, req: Request, journal: Journal) -> Change:
        raise InvalidConfig("networks annotation: not valid JSON")

    with pytest.raises(InvalidConfig):
        Dynamic(h.verbs.engine, refuses, reporter).reconcile(request("ADD"))
    assert len(reporter.outcomes) == 2  # written despite the refusal
    journal = h.store.load("c1", "eth0")
    assert journal is not None and not journal.status_pending


def test_a_network_still_releasing_is_deled_once_per_change_and_holds_its_name() -> None:
    h, _ = sandbox()
    h.executor.fail[("DEL", "a")] = DelegateError("a: the IPAM store is unreachable")
    reconcile(h, Change(remove=("net1",)))
    h.executor.calls.clear()
    out = reconcile(h, Change(add=(attach("b", "net1"),), remove=("net1",)))
    assert out is not None
    assert h.executor.of("DEL") == ["a"]  # once, by the recovery
    assert h.executor.of("ADD") == []
    assert sorted(type(e).__name__ for _, _, e in out.failed) == ["DelegateError", "TryAgainLater"]
    assert "still held by a network whose release failed" in str(out.failed[-1][2])
    assert states(h) == [("eth0", ADDED), ("net1", REMOVING)]
