"""The verbs over the engine on fake seams: rollback order, crash recovery, parallel
batches, DEL corners.

No root, no kernel, no plugin: tests/unit/engine/fakes.py stands in for the journal on
disk, the pod's network namespace and the delegates. The same behaviours run against
the real kernel and plugins in tests/integration/engine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from multinet.cni import errors
from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import CNIError, DelegateError, IOFailure
from multinet.cni.request import Request, from_env
from multinet.config.netconf import NetConf, load
from multinet.engine.engine import Engine
from multinet.engine.journal import ADDED, ADDING, RELEASE_SKIPPED, Journal, SandboxBusy
from multinet.engine.plan import Attachment, Plan, static_plan
from multinet.engine.routes import RoutePlan, SourceRoute
from multinet.meta.verbs import Reporter, Verbs
from tests.unit.engine.fakes import Crash, FakeExecutor, FakeNetns, FakeStore, World

NETNS = "/var/run/netns/pod"
NETWORKS = ("cluster", "a", "b", "c")


def conf(*, networks: Sequence[str] = NETWORKS, **keys: Any) -> NetConf:
    return load(
        {
            "cniVersion": "1.0.0",
            "name": "multinet",
            "type": "multinet",
            "cniDir": "/nonexistent/unused-by-fakes",
            "delegates": [{"cniVersion": "1.0.0", "name": n, "type": "fake"} for n in networks],
            **keys,
        }
    )


def request(command: str, container: str = "c1", netns: str = NETNS, **config: Any) -> Request:
    stdin = json.dumps({"cniVersion": "1.0.0", "name": "multinet", "type": "multinet", **config})
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/cni/bin",
    }
    return from_env(env, stdin.encode())


def _static(settings: NetConf, req: Request) -> Plan:
    return static_plan(settings.delegates, req.ifname, settings.runtime_config)


@dataclass
class Planned:
    """A test's planner: `plan` (the static delegates unless told), and the networks
    STATUS checks (the delegates unless told)."""

    plan: Callable[[NetConf, Request], Plan] = _static
    networks: Callable[[NetConf], Sequence[NetworkConfig]] = field(
        default=lambda settings: settings.delegates
    )

    def __call__(self, settings: NetConf, req: Request) -> Plan:
        return self.plan(settings, req)

    def status_networks(self, settings: NetConf) -> Sequence[NetworkConfig]:
        return self.networks(settings)


@dataclass
class Host:
    world: World
    store: FakeStore
    netns: FakeNetns
    executor: FakeExecutor
    verbs: Verbs


def host(
    settings: NetConf | None = None,
    world: World | None = None,
    *,
    planner: Callable[[NetConf, Request], Plan] = _static,
    reporter: Reporter | None = None,
    probe: Callable[[str], str | None] = lambda path: None,
) -> Host:
    world = world or World(pods={NETNS: set()})
    store = FakeStore(world)
    netns = FakeNetns(world)
    executor = FakeExecutor(world, store)
    engine = Engine(
        settings or conf(), store=store, pod_netns=netns, executor=executor, probe=probe
    )
    return Host(world, store, netns, executor, Verbs(engine, Planned(planner), reporter))


IFNAMES = {"cluster": "eth0", "a": "net1", "b": "net2", "c": "net3"}


# -- ADD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fsync", [False, True])
def test_add_journals_every_network_before_the_first_delegate_then_once_more(fsync: bool) -> None:
    """Two saves; the last one durable only with journalFsync."""
    h = host(conf(journalFsync=fsync))
    out = h.verbs.add(request("ADD"))
    assert h.executor.of("ADD") == list(NETWORKS)
    assert h.store.saves == [
        (list(NETWORKS), [ADDING] * 4, False, False),
        (list(NETWORKS), [ADDED] * 4, True, fsync),
    ]
    assert out["interfaces"][0]["name"] == "eth0"  # the cluster network's result
    assert h.world.pods[NETNS] == set(IFNAMES.values())


def test_second_add_is_refused_and_runs_nothing() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    h.executor.calls.clear()
    with pytest.raises(errors.AlreadyAttached) as e:
        h.verbs.add(request("ADD"))
    assert e.value.code == errors.ALREADY_ATTACHED
    assert h.executor.calls == []


def test_taken_interface_name_fails_before_any_delegate() -> None:
    h = host(world=World(pods={NETNS: {"net2"}}))
    with pytest.raises(errors.InvalidConfig, match="net2 already exist"):
        h.verbs.add(request("ADD"))
    assert h.executor.calls == [] and h.world.journals == {}


def dhcp_b(**keys: Any) -> NetConf:
    """NETWORKS, network b with dhcp IPAM (its client daemon's socket: /run/b.sock)."""
    delegates = [{"cniVersion": "1.0.0", "name": n, "type": "fake"} for n in NETWORKS]
    delegates[2]["ipam"] = {"type": "dhcp", "daemonSocketPath": "/run/b.sock"}
    return conf(delegates=delegates, **keys)


def test_a_failed_preflight_runs_no_delegate_and_leaves_no_journal() -> None:
    probed: list[str] = []

    def probe(path: str) -> str | None:
        probed.append(path)
        return "connection refused"

    h = host(dhcp_b(), probe=probe)
    with pytest.raises(errors.TryAgainLater, match=r"network 'b' needs /run/b\.sock"):
        h.verbs.add(request("ADD"))
    assert probed == ["/run/b.sock"]
    assert h.executor.calls == [] and h.world.journals == {}


def test_preflight_runs_on_add_only() -> None:
    probed: list[str] = []
    h = host(dhcp_b(), probe=lambda path: probed.append(path))
    h.verbs.add(request("ADD"))
    h.verbs.delete(request("DEL"))
    assert probed == ["/run/b.sock"]


@pytest.mark.parametrize(("bound", "delegate_timeout", "want"), [(5, 60, 5), (90, 60, 60)])
def test_a_bound_tightens_the_delegate_timeout_of_its_network_only(
    bound: float, delegate_timeout: float, want: float
) -> None:
    h = host(dhcp_b(delegateTimeout=delegate_timeout, dhcpTimeout=bound))
    h.verbs.add(request("ADD"))
    timeouts = {c.network: c.timeout for c in h.executor.calls}
    assert timeouts == {"cluster": delegate_timeout, "a": delegate_timeout, "b": want, "c": 60}


def test_a_bounded_network_that_times_out_reports_what_the_bound_means_and_rolls_back() -> None:
    h = host(dhcp_b(dhcpTimeout=5))
    h.executor.fail[("ADD", "b")] = errors.DelegateTimedOut("fake ADD timed out after 5s")
    with pytest.raises(errors.TryAgainLater) as e:
        h.verbs.add(request("ADD"))
    assert e.value.msg == (
        "network 'b' (net2): no DHCP server answered: no lease obtained within 5s"
    )
    assert e.value.details.startswith("fake ADD timed out after 5s")
    assert h.executor.of("DEL") == ["b", "a", "cluster"]
    assert h.world.pods[NETNS] == set() and h.world.journals == {}


def test_a_bounded_network_s_other_failures_go_through_its_explain() -> None:
    h = host(dhcp_b())
    h.executor.fail[("ADD", "b")] = DelegateError("error calling DHCP.Allocate: no more tries")
    with pytest.raises(errors.TryAgainLater) as e:
        h.verbs.add(request("ADD"))
    assert e.value.msg == (
        "network 'b' (net2): no DHCP server answered: the DHCP daemon gave up: "
        "error calling DHCP.Allocate: no more tries"
    )


def test_an_unbounded_network_that_times_out_is_an_io_failure_naming_it() -> None:
    h = host(dhcp_b(dhcpTimeout=5))
    h.executor.fail[("ADD", "a")] = errors.DelegateTimedOut("fake ADD timed out after 60s")
    with pytest.raises(errors.DelegateTimedOut) as e:
        h.verbs.add(request("ADD"))
    assert (e.value.code, e.value.msg) == (5, "network 'a' (net1): fake ADD timed out after 60s")


@pytest.mark.parametrize("failing", ["cluster", "a", "b", "c"])
def test_failed_add_rolls_back_what_it_started_in_reverse(failing: str) -> None:
    h = host()
    h.executor.fail[("ADD", failing)] = errors.TryAgainLater("busy", "details")
    with pytest.raises(CNIError) as e:
        h.verbs.add(request("ADD"))
    started = list(NETWORKS[: NETWORKS.index(failing) + 1])
    assert h.executor.of("ADD") == started
    assert h.executor.of("DEL") == list(reversed(started))  # the failed one included
    # The delegate's own code reaches the runtime, its message names the network.
    assert e.value.code == errors.TRY_AGAIN_LATER
    assert e.value.msg == f"network {failing!r} ({IFNAMES[failing]}): busy"
    assert e.value.details == "details"
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


def test_failed_status_report_rolls_back_everything() -> None:
    class Refusing:
        def added(self, conf: NetConf, req: Request, plan: Plan, journal: Journal) -> None:
            raise errors.ClusterError("pod is gone")

        def failed(self, *args: Any) -> None:
            self.failure = args[-1]

        def deleted(self, *args: Any) -> None:
            raise AssertionError("not a DEL")

    reporter = Refusing()
    h = host(reporter=reporter)
    with pytest.raises(errors.ClusterError):
        h.verbs.add(request("ADD"))
    assert h.executor.of("DEL") == list(reversed(NETWORKS))
    assert isinstance(reporter.failure, errors.ClusterError)
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


def test_failed_add_leaves_no_interface_a_failed_delegate_kept() -> None:
    h = host()
    h.executor.leaky.add("b")
    h.executor.fail[("ADD", "b")] = DelegateError("b: IPAM failed")
    with pytest.raises(DelegateError):
        h.verbs.add(request("ADD"))
    assert h.netns.removed == [(NETNS, ["net2"])]  # the leak guard, after the rollback
    assert h.world.pods[NETNS] == set()


def test_failed_rollback_keeps_the_journal_for_the_runtimes_del() -> None:
    h = host()
    h.executor.leaky.add("b")  # its DEL fails: the IPAM release did not happen
    h.executor.fail[("ADD", "c")] = DelegateError("c broke")
    with pytest.raises(DelegateError):
        h.verbs.add(request("ADD"))
    journal = h.store.load("c1", "eth0")
    assert journal is not None and not journal.complete  # the record of what may exist
    h.executor.leaky.clear()  # the IPAM is back
    h.executor.calls.clear()
    h.verbs.delete(request("DEL"))
    assert h.executor.of("DEL") == ["c", "b", "a", "cluster"]  # retried
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


def test_del_leaves_no_interface_when_a_delegate_del_fails() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    h.executor.leaky.add("a")
    h.verbs.delete(request("DEL"))
    assert h.netns.removed == [(NETNS, ["net1"])]
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


def test_del_after_the_netns_is_gone_needs_no_leak_guard() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    del h.world.pods[NETNS]
    h.executor.leaky.add("a")
    h.verbs.delete(request("DEL"))
    assert h.netns.removed == [] and h.world.journals == {}


# -- parallelAttach --------------------------------------------------------------------------


def test_parallel_add_runs_the_secondaries_at_once_after_the_cluster_network() -> None:
    h = host(conf(parallelAttach=True))
    h.executor.barrier = threading.Barrier(3)  # a, b and c must all be inside ADD together
    h.verbs.add(request("ADD"))
    assert h.executor.of("ADD")[0] == "cluster"
    assert sorted(h.executor.of("ADD")[1:]) == ["a", "b", "c"]
    journal = h.store.load("c1", "eth0")
    assert journal is not None
    assert [(e.name, e.ifname, e.state) for e in journal.entries] == [
        (n, IFNAMES[n], ADDED) for n in NETWORKS
    ]


def test_parallel_del_removes_the_secondaries_at_once_then_the_cluster_network() -> None:
    h = host(conf(parallelAttach=True))
    h.verbs.add(request("ADD"))
    h.executor.calls.clear()
    h.executor.barrier = threading.Barrier(3)
    h.verbs.delete(request("DEL"))
    assert sorted(h.executor.of("DEL")[:3]) == ["a", "b", "c"]
    assert h.executor.of("DEL")[3] == "cluster"
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


def test_parallel_batch_failure_rolls_back_the_whole_batch_and_reports_the_first() -> None:
    h = host(conf(parallelAttach=True))
    h.executor.fail[("ADD", "b")] = DelegateError("b broke")
    h.executor.fail[("ADD", "c")] = DelegateError("c broke")
    with pytest.raises(DelegateError, match=r"^network 'b' \(net2\): b broke$"):
        h.verbs.add(request("ADD"))
    dels = h.executor.of("DEL")
    assert sorted(dels[:3]) == ["a", "b", "c"] and dels[3] == "cluster"
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


# -- crash recovery (kill -9 at every delegate) ---------------------------------------------


@pytest.mark.parametrize("dies_at", NETWORKS)
def test_del_after_a_crash_removes_everything_the_journal_names(dies_at: str) -> None:
    h = host()
    h.executor.crash_on = ("ADD", dies_at)
    with pytest.raises(Crash):
        h.verbs.add(request("ADD"))
    after = host(world=h.executor.crashed)  # a new process on what was persisted
    journal = after.store.load("c1", "eth0")
    assert journal is not None and not journal.complete
    assert [e.name for e in journal.entries] == list(NETWORKS)  # all, before the first ran
    after.verbs.delete(request("DEL"))
    assert after.executor.of("DEL") == list(reversed(NETWORKS))
    assert after.world.journals == {} and after.world.pods[NETNS] == set()


@pytest.mark.parametrize("dies_at", NETWORKS)
def test_add_after_a_crash_finishes_the_rollback_then_adds_once(dies_at: str) -> None:
    h = host()
    h.executor.crash_on = ("ADD", dies_at)
    with pytest.raises(Crash):
        h.verbs.add(request("ADD"))
    after = host(world=h.executor.crashed)
    after.verbs.add(request("ADD"))
    assert after.executor.of("DEL") == list(reversed(NETWORKS))
    assert after.executor.of("ADD") == list(NETWORKS)
    journal = after.store.load("c1", "eth0")
    assert journal is not None and journal.complete
    assert after.world.pods[NETNS] == set(IFNAMES.values())


# -- DEL -------------------------------------------------------------------------------------


def test_del_runs_each_network_with_its_own_result_in_reverse() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    results = {e.name: e.result for e in h.store.load("c1", "eth0").entries}  # type: ignore[union-attr]
    h.executor.calls.clear()
    h.verbs.delete(request("DEL"))
    assert [(c.network, c.ifname, c.prev_result) for c in h.executor.calls] == [
        (n, IFNAMES[n], results[n]) for n in reversed(NETWORKS)
    ]
    assert h.world.journals == {}


def test_del_twice_and_del_of_nothing_succeed() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    h.verbs.delete(request("DEL"))
    h.executor.calls.clear()
    h.verbs.delete(request("DEL"))  # no journal: the config's networks, each a no-op
    assert h.executor.of("DEL") == list(reversed(NETWORKS))
    assert h.world.journals == {}


def test_del_succeeds_when_the_journal_is_out_of_reach() -> None:
    """A cniDir that cannot be used holds no journal: DEL what the configuration names."""

    class Unreachable(FakeStore):
        def lock(
            self, container_id: str, ifname: str, create: bool = True, wait: bool = True
        ) -> Any:
            raise IOFailure("cannot create journal directory /x/journal", "File name too long")

    h = host()
    h.verbs.add(request("ADD"))
    h.executor.calls.clear()
    h.verbs.store = Unreachable(h.world)
    h.verbs.delete(request("DEL"))
    assert h.executor.of("DEL") == list(reversed(NETWORKS))  # from the configuration
    assert h.world.pods[NETNS] == set()


def test_del_without_journal_and_without_plan_does_nothing() -> None:
    def no_plan(conf: NetConf, req: Request) -> Plan:
        raise errors.TryAgainLater("API server unreachable")

    h = host(planner=no_plan)
    h.verbs.delete(request("DEL"))
    assert h.executor.calls == []


def test_del_uses_the_journaled_netns_when_the_runtime_sends_none() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    h.verbs.delete(request("DEL", netns=""))
    assert h.world.pods[NETNS] == set()


def test_del_succeeds_when_a_delegate_del_fails() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    h.executor.fail[("DEL", "b")] = IOFailure("b cannot be removed")
    h.verbs.delete(request("DEL"))
    assert h.executor.of("DEL") == ["c", "b", "a", "cluster"]  # one failure stops nothing
    assert h.world.journals == {}


def test_a_failed_release_is_recorded_as_skipped_and_the_del_succeeds() -> None:
    """The DHCP daemon down: the network's DEL fails, its interface is removed anyway, and
    the journal the reporter is given marks the release as skipped."""
    told: list[Journal] = []

    class Told:
        def added(self, *args: Any) -> None: ...

        def failed(self, *args: Any) -> None: ...

        def deleted(self, conf: NetConf, req: Request, journal: Journal) -> None:
            told.append(journal)

    h = host(reporter=Told())
    h.verbs.add(request("ADD"))
    h.executor.fail[("DEL", "b")] = errors.TryAgainLater("dhcp daemon: connection refused")
    h.verbs.delete(request("DEL"))
    states = {e.name: e.state for e in told[0].entries}
    assert states == {"cluster": ADDED, "a": ADDED, "b": RELEASE_SKIPPED, "c": ADDED}
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


def test_retry_delete_on_error_asks_for_a_retry_while_the_netns_exists() -> None:
    h = host(conf(retryDeleteOnError=True))
    h.verbs.add(request("ADD"))
    h.executor.fail[("DEL", "a")] = IOFailure("a cannot be removed")
    with pytest.raises(errors.TryAgainLater) as e:
        h.verbs.delete(request("DEL"))
    assert e.value.code == errors.TRY_AGAIN_LATER and "a cannot be removed" in e.value.details
    assert ("c1", "eth0") in h.world.journals  # kept: the retry needs it
    del h.world.pods[NETNS]  # the sandbox is gone: nothing left to retry for
    h.verbs.delete(request("DEL"))
    assert h.world.journals == {}


def test_del_is_serialized_with_add_of_the_same_container() -> None:
    h = host()
    order: list[str] = []
    inside = threading.Event()
    go = threading.Event()

    def slow_plan(settings: NetConf, req: Request) -> Plan:
        order.append(f"plan {req.command}")
        if req.command == "ADD":
            inside.set()
            go.wait(5)
        return static_plan(settings.delegates, req.ifname, {})

    h = host(planner=slow_plan)
    adder = threading.Thread(target=h.verbs.add, args=(request("ADD"),))
    adder.start()
    assert inside.wait(5)
    deleter = threading.Thread(target=h.verbs.delete, args=(request("DEL"),))
    deleter.start()
    deleter.join(0.2)
    assert deleter.is_alive()  # waits for the ADD's lock
    go.set()
    adder.join(5)
    deleter.join(5)
    assert order == ["plan ADD"]  # DEL found the journal: no plan needed
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


# -- CHECK, GC, STATUS ------------------------------------------------------------------------


def test_check_without_attachment_is_unknown_container() -> None:
    with pytest.raises(errors.UnknownContainer):
        host().verbs.check(request("CHECK"))


def test_check_runs_every_network_and_names_the_one_that_fails() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    h.verbs.check(request("CHECK"))
    assert h.executor.of("CHECK") == list(NETWORKS)
    h.world.pods[NETNS].discard("net2")
    with pytest.raises(DelegateError, match=r"^network 'b' \(net2\): b CHECK failed"):
        h.verbs.check(request("CHECK"))


def test_check_of_the_cluster_network_uses_the_runtime_prev_result() -> None:
    h = host()
    h.verbs.add(request("ADD"))
    runtime = {"cniVersion": "1.0.0", "ips": [{"address": "10.9.9.9/24"}]}
    h.verbs = Verbs(
        Engine(conf(prevResult=runtime), store=h.store, pod_netns=h.netns, executor=h.executor)
    )
    h.executor.calls.clear()
    h.verbs.check(request("CHECK"))
    assert h.executor.calls[0].prev_result == {**runtime, "dns": {}}


def test_gc_removes_what_is_not_valid_and_tells_the_delegates_what_is() -> None:
    h = host()
    h.world.pods["/var/run/netns/other"] = set()
    h.verbs.add(request("ADD", container="keep"))
    h.verbs.add(request("ADD", container="stale", netns="/var/run/netns/other"))
    h.executor.calls.clear()
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    h.verbs.gc(request("GC", **{"cni.dev/valid-attachments": valid}))
    assert h.executor.of("DEL") == list(reversed(NETWORKS))
    assert h.store.keys() == [("keep", "eth0")]
    gcs = [c for c in h.executor.calls if c.command == "GC"]
    assert {c.network: c.prev_result for c in gcs} == {
        n: {"valid": [{"containerID": "keep", "ifname": IFNAMES[n]}]} for n in NETWORKS
    }


def test_status_checks_the_networks_the_cluster_layer_resolves() -> None:
    h = host()
    h.verbs.planner = Planned(networks=lambda settings: settings.delegates[:2])
    h.verbs.status(request("STATUS"))
    assert h.executor.of("STATUS") == ["cluster", "a"]

    def unresolvable(settings: NetConf) -> Sequence[Any]:
        raise errors.NetworkNotFound("network '/etc/cni/net.d/10-x.conflist' not found")

    h.verbs.planner = Planned(networks=unresolvable)
    with pytest.raises(errors.NotAvailable, match=r"10-x\.conflist' not found") as e:
        h.verbs.status(request("STATUS"))
    assert e.value.code == errors.NOT_AVAILABLE


def test_status_checks_every_delegate_and_the_readiness_file(tmp_path: Any) -> None:
    h = host()
    h.verbs.status(request("STATUS"))
    assert h.executor.of("STATUS") == list(NETWORKS)
    h.executor.fail[("STATUS", "b")] = DelegateError("no b")
    with pytest.raises(errors.NotAvailable, match="network 'b' is not ready: no b"):
        h.verbs.status(request("STATUS"))
    missing = str(tmp_path / "ready")
    h2 = host(conf(readinessindicatorfile=missing))
    with pytest.raises(errors.NotAvailable, match="readiness indicator file"):
        h2.verbs.status(request("STATUS"))
    assert h2.executor.calls == []


# -- default-route ---------------------------------------------------------------------------


def route_plan(settings: NetConf, req: Request) -> Plan:
    nets = settings.delegates
    return Plan(
        (
            Attachment("cluster", nets[0], "eth0", default=True, replaced_default_routes=(4,)),
            Attachment("a", nets[1], "net1", default_route=("10.2.0.1",)),
        )
    )


def test_default_route_moves_and_the_cluster_result_loses_its_own() -> None:
    h = host(conf(networks=("cluster", "a")), planner=route_plan)
    out = h.verbs.add(request("ADD"))
    assert h.netns.route_plans == [(NETNS, RoutePlan(moves=((4, "10.2.0.1", "net1"),)))]
    assert "routes" not in out  # its only route was the default
    journal = h.store.load("c1", "eth0")
    assert journal is not None
    cluster, a = journal.entries
    assert cluster.result is not None and cluster.result["routes"] == []
    assert (cluster.default, cluster.replaced_default_routes) == (True, (4,))
    assert (a.default, a.default_route) == (False, ("10.2.0.1",))


def test_a_failed_default_route_move_rolls_back() -> None:
    h = host(conf(networks=("cluster", "a")), planner=route_plan)
    h.netns.route_error = IOFailure("default-route: interface net1 not found in the pod")
    with pytest.raises(IOFailure):
        h.verbs.add(request("ADD"))
    assert h.executor.of("DEL") == ["a", "cluster"]
    assert h.world.journals == {} and h.world.pods[NETNS] == set()


def test_dropped_default_routes_and_source_routes_are_planned_and_journaled() -> None:
    def plan(settings: NetConf, req: Request) -> Plan:
        nets = settings.delegates
        return Plan(
            (
                Attachment("cluster", nets[0], "eth0", default=True),
                Attachment("a", nets[1], "net1", drop_default_routes=True),
                Attachment("b", nets[2], "net2", source_routing=True),
            )
        )

    h = host(conf(networks=("cluster", "a", "b")), planner=plan)
    h.verbs.add(request("ADD"))
    ((_, routes),) = h.netns.route_plans
    assert routes.drops == ("net1",) and routes.moves == ()
    assert routes.sources == (SourceRoute("net2", 102, "10.3.0.5/24", "10.3.0.1"),)
    journal = h.store.load("c1", "eth0")
    assert journal is not None
    cluster, a, b = (e.result for e in journal.entries)
    assert cluster is not None and cluster["routes"]  # untouched
    assert a is not None and "routes" in a and a["routes"] == []  # its default route is gone
    assert b is not None and b["routes"]


def test_extra_cni_args_reach_the_delegate_on_every_command() -> None:
    def plan(settings: NetConf, req: Request) -> Plan:
        nets = settings.delegates
        extra = (("IgnoreUnknown", "true"), ("MAC", "0a:00:00:00:00:09"), ("IP", "10.9.0.9/24"))
        return Plan(
            (
                Attachment("cluster", nets[0], "eth0", default=True),
                Attachment("a", nets[1], "net1", cni_args=extra),
            )
        )

    seen: list[tuple[str, str, str]] = []
    h = host(conf(networks=("cluster", "a")), planner=plan)
    original = h.executor._enter

    def spy(command: str, net: Any, inv: Any, prev: Any) -> None:
        seen.append((command, net.name, inv.args))
        original(command, net, inv, prev)

    h.executor._enter = spy  # type: ignore[method-assign]
    h.verbs.add(request("ADD"))
    h.verbs.check(request("CHECK"))
    h.verbs.delete(request("DEL"))
    want = "IgnoreUnknown=true;MAC=0a:00:00:00:00:09;IP=10.9.0.9/24"
    assert {(c, a) for c, n, a in seen if n == "a"} == {(c, want) for c in ("ADD", "CHECK", "DEL")}
    assert {a for _, n, a in seen if n == "cluster"} == {""}


# -- multinetd's GC of a sandbox it chose before taking its lock (meta.verbs.collect) ------


def test_gc_collect_skips_a_sandbox_whose_lock_is_held_rather_than_wait_for_it() -> None:
    """An ADD in progress holds the lock: waiting would DEL the journal it then writes."""
    h = host()
    h.verbs.add(request("ADD"))
    h.executor.calls.clear()
    with h.store.lock("c1", "eth0"):  # the ADD, still running
        with pytest.raises(SandboxBusy):
            h.verbs.collect(request("DEL"), grace=0.0)
    assert h.executor.of("DEL") == []
    assert ("c1", "eth0") in h.world.journals


def test_gc_collect_leaves_a_journal_written_within_the_grace_period() -> None:
    """The ADD finished between the GC's look at the journal's age and its lock."""
    h = host()
    h.verbs.add(request("ADD"))
    h.executor.calls.clear()
    assert h.verbs.collect(request("DEL"), grace=600.0) == "young"
    assert h.executor.of("DEL") == [] and ("c1", "eth0") in h.world.journals
    h.store.written[("c1", "eth0")] -= 601  # as old as a sandbox the runtime lost
    assert h.verbs.collect(request("DEL"), grace=600.0) == "deleted"
    assert h.executor.of("DEL") == list(reversed(NETWORKS))
    assert h.verbs.collect(request("DEL"), grace=600.0) == "gone"
