"""GC from the runtime's own truth (`gc: true`): what multinet attached to sandboxes the
runtime no longer has is DELed, and the delegates' own GC reclaims what is left.

No runtime sends CNI GC today (containerd's go-cni has none: containerd/go-cni PR #131;
containerd#12130 shows the leaks when a chained plugin fails), and a DEL that never came
(the runtime's state lost, a crash at the wrong moment) or that failed leaves IPAM
allocations behind for good. So multinetd asks the runtime which pod sandboxes exist
(CRI `ListPodSandbox` on its socket, in a short-lived child process: cluster.runtime, so
that grpcio never stays in the daemon's memory), soon after start-up and every
`gcInterval` seconds, and in one pass:

1. DELs the journaled attachments of every pod sandbox the runtime no longer has, through
   the runtime's own DEL path (meta.verbs.Verbs.collect: the cached results, a skipped
   release recorded, the reporter told). A journal written less than `gcGracePeriod` ago
   is left alone: its sandbox may still be being created (containerd lists a sandbox only
   once its RunPodSandbox, the CNI ADD included, is done).
2. Runs again the releases a DEL skipped (engine.releases) until the delegate's DEL
   succeeds.
3. Sends CNI GC (1.1.0) with `cni.dev/valid-attachments` to each network that speaks it,
   naming every attachment still journaled, holding the host's GC gate alone
   (engine.gate: no ADD allocates meanwhile); a skipped release of a network whose GC
   succeeded is done (the network reclaimed it).

Safe by construction: nothing is deleted when the runtime cannot be asked, fails, passes
its deadline, or lists no sandbox at all (multinetd's own pod is one: a runtime that
lists none is not the node's, or not ready). Step 3 is skipped while the runtime has a
ready sandbox on the pod network that no journal accounts for (attached before multinet
was, or by Multus: its addresses would look unused). `gcDryRun` logs what a pass would
do and does none of it. Every action is logged and counted (the multinet_gc_* metrics).

A pass does not compete with a burst of CNI requests (a node that reboots starts every
pod at once; the query's child process and the DELs take memory of the same cgroup): it
starts once the admission lanes have been idle `gcQuietPeriod` seconds, and waits so at
most `gcInterval` seconds (then runs anyway: a node never idle is still collected).
Nothing is lost by the wait: a journal younger than the grace period is left alone anyway.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from multinet.cni import chain
from multinet.cni.errors import CNIError, TryAgainLater
from multinet.cni.request import Request, parse_args
from multinet.config import netconf
from multinet.daemon.admission import LANES, Admission
from multinet.daemon.config import DaemonConfig
from multinet.daemon.metrics import DaemonMetrics
from multinet.daemon.service import CNIService
from multinet.engine.dhcp import in_root
from multinet.engine.dynamic import request_for
from multinet.engine.engine import Engine
from multinet.engine.gate import HostGate
from multinet.engine.journal import FileJournalStore, Journal
from multinet.engine.releases import FileReleaseStore, SkippedRelease

if TYPE_CHECKING:
    from multinet.cluster.runtime import RuntimeSandbox

log = logging.getLogger("multinet.daemon")
GATE_TIMEOUT = 30.0  # seconds the CNI GC waits for the ADDs in flight to let it in
GC_VERSION = "1.1.0"
QUIET_POLL = 0.25  # seconds between two looks at the admission lanes while waiting for quiet


class Runtime(Protocol):
    """The container runtime's sandboxes (cluster.runtime.RuntimeProcess)."""

    socket_path: str

    def sandboxes(self) -> list[RuntimeSandbox]: ...

    def host_networks(self, sandbox_ids: list[str]) -> dict[str, bool | None]: ...

    def close(self) -> None: ...


def find_socket(configured: str, host_root: str) -> str:
    """The runtime's CRI socket in this container: `configured` (a host path) under
    hostRoot, else whichever of containerd's and CRI-O's defaults exists. TryAgainLater
    when there is none, or when both exist (which one the kubelet uses is not known)."""
    from multinet.cluster.runtime import DEFAULT_SOCKETS

    candidates = [in_root(p, host_root) for p in ((configured,) if configured else DEFAULT_SOCKETS)]
    found = [p for p in candidates if _is_socket(p)]
    if len(found) > 1:
        raise TryAgainLater(
            f"both {found[0]} and {found[1]} exist: set gcRuntimeSocket to the kubelet's "
            "container runtime endpoint"
        )
    if not found:
        raise TryAgainLater(f"no container runtime socket at {' or '.join(candidates)}")
    return found[0]


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass
class GCPass:
    """What one pass did (or, dry, would have done)."""

    skipped: str = ""  # why nothing was done (the runtime could not be asked)
    deleted: list[str] = field(default_factory=list)  # "<container ID>/<ifname>" DELed
    young: list[str] = field(default_factory=list)  # left for the grace period
    released: list[str] = field(default_factory=list)  # skipped releases done
    collected: list[str] = field(default_factory=list)  # skipped releases a GC reclaimed
    gc_sent: list[str] = field(default_factory=list)  # networks sent CNI GC
    failed: list[str] = field(default_factory=list)  # what failed (retried next pass)
    unaccounted: list[str] = field(default_factory=list)  # sandboxes holding CNI GC back

    def fields(self) -> dict[str, str]:
        return {
            "deleted": str(len(self.deleted)),
            "young": str(len(self.young)),
            "released": str(len(self.released) + len(self.collected)),
            "gc_networks": ",".join(self.gc_sent),
            "failed": str(len(self.failed)),
        }


class RuntimeGC:
    def __init__(
        self,
        config: DaemonConfig,
        service: CNIService,
        store: FileJournalStore,
        metrics: DaemonMetrics,
        admission: Admission,
        runtime: Runtime | None = None,
    ) -> None:
        self.config = config
        self.service = service
        self.store = store
        self.metrics = metrics
        self.admission = admission
        self.runtime = runtime  # made on the first pass (its socket found then)
        self.releases = FileReleaseStore(config.cni_dir)
        self.gate = HostGate(config.cni_dir)
        self.dry = config.gc_dry_run
        self._host_network: set[str] = set()  # sandbox IDs on the node's network
        self._lock = threading.Lock()  # one pass at a time

    def run(self, stopping: threading.Event) -> None:
        """A pass once the lanes are quiet (start-up), then one every gcInterval seconds
        (each once quiet) until `stopping`."""
        quiet, limit = self.config.gc_quiet_period, self.config.gc_interval
        while wait_quiet(self.admission, quiet, limit, stopping):
            self.collect()
            if stopping.wait(self.config.gc_interval):
                break

    def wait_quiet(self, stopping: threading.Event) -> bool:
        """Wait until the admission lanes have had nothing executing or waiting for
        gcQuietPeriod seconds, or gcInterval seconds have passed; False on `stopping`."""
        quiet, limit = self.config.gc_quiet_period, self.config.gc_interval
        started = time.monotonic()
        idle_since: float | None = None
        while True:
            now = time.monotonic()
            busy = any(self.admission.executing(n) or self.admission.queued(n) for n in LANES)
            idle_since = None if busy else (now if idle_since is None else idle_since)
            if idle_since is not None and now - idle_since >= quiet:
                return True
            if now - started >= limit:
                log.info("GC: the CNI requests have not paused for %gs: a pass anyway", limit)
                return True
            if stopping.wait(QUIET_POLL):
                return False

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()

    def pending_releases(self) -> int:
        """Skipped releases still owed (the gauge)."""
        return self.releases.count()

    def collect(self) -> GCPass:
        """One pass; never raises (a bug is logged with its traceback and counted)."""
        with self._lock:
            try:
                return self._pass()
            except CNIError as e:  # the node's disk: the journals or records unreadable
                log.warning("GC pass stopped (the next one tries again): %s", e)
                self.metrics.gc_runs.inc("failed")
                return GCPass(skipped=str(e))
            except Exception as e:
                log.exception("GC pass failed")
                self.metrics.gc_runs.inc("failed")
                return GCPass(skipped=f"internal error: {type(e).__name__}: {e}")

    def _runtime(self) -> Runtime:
        if self.runtime is None:
            from multinet.cluster.runtime import RuntimeProcess

            path = find_socket(self.config.gc_runtime_socket, self.config.host_root)
            log.info("GC: asking the container runtime on %s", path)
            self.runtime = RuntimeProcess(path)
        return self.runtime

    def _pass(self) -> GCPass:
        try:
            runtime = self._runtime()
            sandboxes = runtime.sandboxes()
            if not sandboxes:
                raise TryAgainLater(
                    f"the container runtime on {runtime.socket_path} lists no pod sandbox "
                    "at all (not even multinetd's own): its answer is not taken"
                )
        except CNIError as e:
            log.warning("GC skipped, nothing is deleted: %s", e)
            self.metrics.gc_runs.inc("runtime-unavailable")
            return GCPass(skipped=str(e))
        listed = {s.id: s for s in sandboxes}
        done = GCPass()
        self._delete_gone(listed, done)
        self._retry_releases(done)
        self._cni_gc(listed, done)
        self.metrics.gc_runs.inc("dry-run" if self.dry else "done")
        dry = " (dry run)" if self.dry else ""
        log.info("GC pass%s done", dry, extra={"fields": done.fields()})
        return done

    # -- 1. the attachments of sandboxes the runtime no longer has --------------------

    def _delete_gone(self, listed: dict[str, RuntimeSandbox], done: GCPass) -> None:
        now = time.time()
        for cid, ifname in self.store.keys():
            if cid in listed:
                continue
            key = f"{cid}/{ifname}"
            try:
                written = self.store.modified(cid, ifname)
                journal = self.store.load(cid, ifname) if written is not None else None
            except CNIError as e:
                self._failed(done, "sandbox-del", key, e)
                continue
            if written is None or journal is None:
                continue  # its DEL came meanwhile
            if not _of_a_pod(journal):
                # Not a kubelet's sandbox (nerdctl, podman...): the CRI cannot vouch for it.
                self.metrics.gc_actions.inc("sandbox-del", "not-a-pod")
                log.debug("GC: %s has no K8S_POD_NAME in its CNI_ARGS: left alone", key)
                continue
            if now - written < self.config.gc_grace_period:
                done.young.append(key)
                self.metrics.gc_actions.inc("sandbox-del", "young")
                log.info(
                    "GC: %s is not listed by the runtime but its journal is %.0fs old: left "
                    "for the grace period (its sandbox may still be being created)",
                    key,
                    now - written,
                )
                continue
            fields = _journal_fields(journal)
            if self.dry:
                done.deleted.append(key)
                self.metrics.gc_actions.inc("sandbox-del", "dry-run")
                log.info(
                    "GC (dry run): would DEL %s: the runtime no longer has its sandbox",
                    key,
                    extra={"fields": fields},
                )
                continue
            try:
                req = request_for(
                    journal, self.service.own_netconf(journal.cni_version), command="DEL"
                )
                conf = netconf.load(req.config, lenient=True)
                found = self.service.verbs(conf, req).collect(req)
            except CNIError as e:
                self._failed(done, "sandbox-del", key, e)
                continue
            if found:
                done.deleted.append(key)
                self.metrics.gc_actions.inc("sandbox-del", "done")
                log.warning(
                    "GC: DELed %s: the runtime no longer has its sandbox",
                    key,
                    extra={"fields": fields},
                )

    # -- 2. the releases a DEL skipped ---------------------------------------------

    def _retry_releases(self, done: GCPass) -> None:
        try:
            pending = self.releases.pending()
        except CNIError as e:
            self._failed(done, "release-retry", "(listing)", e)
            return
        for rec in pending:
            key = _release_key(rec)
            if self.dry:
                self.metrics.gc_actions.inc("release-retry", "dry-run")
                log.info("GC (dry run): would retry the skipped release of %s", key)
                continue
            try:
                failures = self._engine(rec.journal).retry_release(rec.journal)
                if not failures:
                    self.releases.drop(rec)
            except CNIError as e:
                self._failed(done, "release-retry", key, e)
                continue
            if not failures:
                done.released.append(key)
                self.metrics.gc_actions.inc("release-retry", "done")
                log.info("GC: released %s (its DEL skipped it %.0fs ago)", key, _age(rec))
                continue
            rec.attempts += 1
            rec.error = failures[0][1].msg
            try:
                self.releases.save(rec)
            except CNIError as e:
                log.warning("GC: %s", e)
            self._failed(done, "release-retry", key, failures[0][1])

    # -- 3. the delegates' own GC ------------------------------------------------

    def _cni_gc(self, listed: dict[str, RuntimeSandbox], done: GCPass) -> None:
        try:
            done.unaccounted = self._unaccounted(listed)
        except CNIError as e:
            self._failed(done, "cni-gc", "(sandbox status)", e)
            return
        if done.unaccounted:
            self.metrics.gc_actions.inc("cni-gc", "skipped")
            log.warning(
                "GC: no CNI GC this pass: the runtime has %d ready sandbox(es) on the pod "
                "network that multinet has no journal of (%s): their attachments are unknown",
                len(done.unaccounted),
                ", ".join(done.unaccounted[:5]),
            )
            return
        pending = self.releases.pending()
        owed: dict[str, list[SkippedRelease]] = {}
        also = []
        for rec in pending:
            try:
                net = chain.load(rec.entry.config, where=rec.entry.name)
            except CNIError:
                continue
            owed.setdefault(net.name, []).append(rec)
            also.append(net)
        req = self._gc_request()
        engine = self.service.verbs(netconf.load(req.config, lenient=True), req).engine
        with self.gate.exclusive(GATE_TIMEOUT) as held:
            if not held:
                self.metrics.gc_actions.inc("cni-gc", "skipped")
                log.warning("GC: no CNI GC this pass: ADDs kept the gate busy %gs", GATE_TIMEOUT)
                return
            # Under the gate: every journal now, those of sandboxes in creation included.
            targets = engine.gc_targets(set(self.store.keys()), also)
            for net, valid in targets:
                if not chain.gc_supported(net):
                    continue
                self._gc_one(engine, req, net, valid, owed.get(net.name, []), done)

    def _gc_one(
        self,
        engine: Engine,
        req: Request,
        net: chain.NetworkConfig,
        valid: list[dict[str, str]],
        owed: list[SkippedRelease],
        done: GCPass,
    ) -> None:
        if self.dry:
            self.metrics.gc_actions.inc("cni-gc", "dry-run")
            log.info(
                "GC (dry run): would send GC to network %s keeping %d attachment(s)",
                net.name,
                len(valid),
            )
            return
        try:
            engine.gc_network(req, net, valid)
        except CNIError as e:
            self._failed(done, "cni-gc", net.name, e)
            return
        done.gc_sent.append(net.name)
        self.metrics.gc_actions.inc("cni-gc", "done")
        log.info("GC: network %s collected, %d attachment(s) kept", net.name, len(valid))
        for rec in owed:  # its allocation is gone with the network's GC
            try:
                self.releases.drop(rec)
            except CNIError as e:
                log.warning("GC: %s", e)
                continue
            done.collected.append(_release_key(rec))
            self.metrics.gc_actions.inc("release-retry", "collected")

    def _unaccounted(self, listed: dict[str, RuntimeSandbox]) -> list[str]:
        """Ready sandboxes on the pod network with no journal of ours. A sandbox's network
        mode never changes: the host-network ones are remembered."""
        journaled = {cid for cid, _ in self.store.keys()}
        self._host_network &= set(listed)
        unknown = [
            s.id
            for s in listed.values()
            if s.ready and s.id not in journaled and s.id not in self._host_network
        ]
        hosts = self._runtime().host_networks(unknown)  # one query for them all
        out = []
        for sid in unknown:
            if hosts[sid] is None:
                continue  # removed since listed
            if hosts[sid]:
                self._host_network.add(sid)
                continue
            sandbox = listed[sid]
            out.append(f"{sandbox.namespace}/{sandbox.name} ({sid[:12]})")
        return out

    def _gc_request(self) -> Request:
        """The request the networks' GC runs with: the netconf the ADDs ran with (a
        journal's: the daemon's keys laid over the runtime's), else the daemon's own; the
        CNI_PATH of every journal."""
        path: list[str] = []
        config: dict[str, Any] = {}
        for journal in self.store.journals():
            path += [p for p in journal.path if p not in path]
            config = config or dict(journal.netconf)
        config = {**(config or self.service.own_netconf(GC_VERSION)), "cniVersion": GC_VERSION}
        return Request(
            command="GC",
            config=config,
            cni_version=GC_VERSION,
            path=tuple(path),
            env={k: v for k, v in os.environ.items() if not k.startswith("CNI_")},
        )

    def _engine(self, journal: Journal) -> Engine:
        req = request_for(journal, self.service.own_netconf(journal.cni_version), command="DEL")
        return self.service.verbs(netconf.load(req.config, lenient=True), req).engine

    def _failed(self, done: GCPass, action: str, what: str, error: CNIError) -> None:
        done.failed.append(what)
        self.metrics.gc_actions.inc(action, "failed")
        log.warning("GC: %s of %s failed (retried next pass): %s", action, what, error)


def wait_quiet(admission: Admission, quiet: float, limit: float, stopping: threading.Event) -> bool:
    """Wait until the admission lanes have had nothing executing or waiting for `quiet`
    seconds, or `limit` seconds have passed (a node never idle is still collected);
    False when `stopping` is set meanwhile."""
    started = time.monotonic()
    idle_since: float | None = None
    while True:
        now = time.monotonic()
        busy = any(admission.executing(n) or admission.queued(n) for n in LANES)
        idle_since = None if busy else (now if idle_since is None else idle_since)
        if idle_since is not None and now - idle_since >= quiet:
            return True
        if now - started >= limit:
            log.info("GC: the CNI requests have not paused for %gs: a pass anyway", limit)
            return True
        if stopping.wait(QUIET_POLL):
            return False


def _journal_fields(journal: Journal) -> dict[str, str]:
    """The sandbox's pod (as planned, else from its CNI_ARGS) and networks, for the log."""
    args = dict(parse_args(journal.args, lenient=True))
    namespace = journal.pod.get("namespace") or args.get("K8S_POD_NAMESPACE", "")
    name = journal.pod.get("name") or args.get("K8S_POD_NAME", "")
    return {
        "sandbox": journal.container_id,
        "pod": f"{namespace}/{name}",
        "networks": ",".join(f"{e.name}:{e.ifname}" for e in journal.entries),
    }


def _of_a_pod(journal: Journal) -> bool:
    """Whether the sandbox is a pod's: the kubelet's CNI_ARGS name it."""
    args = dict(parse_args(journal.args, lenient=True))
    return bool(journal.pod.get("name") or args.get("K8S_POD_NAME"))


def _release_key(rec: SkippedRelease) -> str:
    return f"{rec.journal.container_id}/{rec.entry.ifname} ({rec.entry.name})"


def _age(rec: SkippedRelease) -> float:
    return time.time() - rec.since
