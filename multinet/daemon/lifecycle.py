"""The daemon as a whole: its servers, its config writer, readiness and graceful shutdown.

Shutdown order matters: /readyz fails first ("shutting down"); the ADDs waiting for
a slot are answered "try again later" (they never started); the socket file goes
(if it is still the one this daemon bound: the next daemon of an upgrade may have
bound the path already), so that a shim arriving now does not queue here: it waits
for the next daemon's socket (its `daemonSocketWait`), else falls back to
in-process; then the servers stop accepting; then the requests in flight finish
(the server joins their threads), the metrics port still answering the probes;
the generated config is removed last, and only when asked, because
without it the runtime would send the DELs of existing pods straight to the
primary network and leak their secondary ones. The fallback's host credentials
(daemon.hostcreds) stay: the fallback needs them while no daemon runs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from multinet.cluster.base import NAD, Cluster, Pod
from multinet.cluster.podresources import KubeletDevices
from multinet.cni.errors import InvalidConfig
from multinet.config.netconf import DEFAULT_DEVICE_CHECKPOINT, DEFAULT_POD_RESOURCES_SOCKET
from multinet.daemon.admission import (
    ADD,
    LANES,
    Admission,
    Admitted,
    Busy,
    Withdrawals,
    memory_budget,
)
from multinet.daemon.confgen import ConfigWriter, install_user_config
from multinet.daemon.config import DaemonConfig
from multinet.daemon.delegate import DelegateService
from multinet.daemon.dhcpd import DhcpSupervisor, find_binary
from multinet.daemon.dynamic import DynamicNetworks
from multinet.daemon.gc import RuntimeGC
from multinet.daemon.hostcreds import HostCredentials
from multinet.daemon.metrics import DaemonMetrics, LaneLoad, no_cache
from multinet.daemon.server import MetricsServer, MultusHandler, UnixServer, peer_gone
from multinet.daemon.service import CNIService, VerbsFactory
from multinet.engine.journal import FileJournalStore, summary
from multinet.meta import dispatch
from multinet.meta.wiring import verbs_for

if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # as cluster.base's protocols: plain classes at run time

log = logging.getLogger("multinet.daemon")
DYNAMIC_THREAD = "dynamic-networks"
GC_THREAD = "runtime-gc"
DYNAMIC_JOIN = 60.0  # seconds a change in progress gets to finish on shutdown


class ClusterCache(Cluster, Protocol):
    """A Cluster the daemon keeps for its lifetime: cluster.cache.CachedCluster."""

    def start(self, wait: float = ...) -> bool: ...

    def close(self) -> None: ...

    def synced(self) -> bool: ...

    def sizes(self) -> dict[str, int]: ...

    def watch_pods(
        self, on_change: Callable[[Pod | None, Pod | None], None], on_list: Callable[[], None]
    ) -> None: ...

    def watch_nads(self, on_change: Callable[[NAD | None, NAD | None], None]) -> None: ...

    def emit_node_event(
        self, node: str, reason: str, message: str, warning: bool = False
    ) -> None: ...


class Daemon:
    """multinetd. `cluster`, when given, is shared by every request that reads the API
    (the watch-backed cache): started with the daemon, closed after the last request."""

    def __init__(
        self,
        config: DaemonConfig,
        verbs_factory: VerbsFactory = verbs_for,
        cluster: ClusterCache | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.cluster = cluster
        self.metrics = DaemonMetrics(cluster.sizes if cluster is not None else no_cache)
        # The requests of both sockets (/v1/cni, Multus's /cni and /delegate) execute
        # within its limits; the dynamic-networks controller is one worker already.
        self.admission = Admission(
            config.max_concurrent_requests,
            config.max_queued_requests,
            config.queue_timeout,
            other_limit=config.max_concurrent_other_requests,
            memory=memory_budget(config.memory_budget_mib, config.request_memory_cost_mib),
        )
        self.withdrawals = Withdrawals(2 * config.queue_timeout)
        # One PodResources channel for the daemon's lifetime (requests naming other paths
        # get their own, as in thin mode).
        self.devices = KubeletDevices(
            str(config.overrides.get("podResourcesSocket", DEFAULT_POD_RESOURCES_SOCKET)),
            str(config.overrides.get("deviceCheckpointFile", DEFAULT_DEVICE_CHECKPOINT)),
        )
        self.service = CNIService(
            config.overrides, self.metrics, verbs_factory, cluster, self.devices
        )
        # The one journal store of the daemon: its queries serve the changes of running
        # pods, /delegate and the attachments API.
        self.store = FileJournalStore(config.cni_dir)
        self.delegates = DelegateService(self.store, self.service)
        self.confgen = (
            ConfigWriter(config, self.metrics, cluster) if config.generate_config else None
        )
        self.host_credentials: HostCredentials | None = None
        if config.fallback_kubeconfig:
            self.host_credentials = HostCredentials(config.fallback_kubeconfig, environ)
        self.dhcp: DhcpSupervisor | None = None
        if config.dhcp_daemon:
            binary = find_binary(config.dhcp_binary, config.dhcp_bin_dirs)
            self.dhcp = DhcpSupervisor(binary, config.dhcp_socket_path)
            self.metrics.dhcp_daemon_up = self.dhcp.up
            self.metrics.dhcp_daemon_restarts = lambda: self.dhcp.restarts if self.dhcp else 0
        self.dynamic: DynamicNetworks | None = None
        if config.dynamic_networks:
            if cluster is None:
                raise InvalidConfig(
                    "dynamicNetworks needs the API server: give multinetd a kubeconfig or "
                    "run it with a service account"
                )
            self.dynamic = DynamicNetworks(
                self.store,
                self.service,
                cluster,
                self.metrics,
                config.dynamic_networks_interval,
            )
            cluster.watch_pods(self.dynamic.on_change, self.dynamic.on_list)
            cluster.watch_nads(self.dynamic.on_nad)
        # GC from the runtime's own truth (daemon.gc): its first pass once the lanes are quiet.
        self.gc: RuntimeGC | None = None
        if config.gc:
            self.gc = RuntimeGC(config, self.service, self.store, self.metrics, self.admission)
            self.metrics.pending_releases = self.gc.pending_releases
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unix: UnixServer | None = None
        self._multus: UnixServer | None = None  # Multus's shim's socket (socketDir)
        self._metrics_server: MetricsServer | None = None
        self._bound: dict[str, tuple[int, int] | None] = {}  # socket path -> (dev, inode)

    # -- what the HTTP layer serves ------------------------------------------

    def cni(
        self, env: dict[str, str], stdin: bytes, client: socket.socket | None = None
    ) -> tuple[int, str]:
        if env.get("CNI_COMMAND") == "DEL":  # the runtime's: the sandbox goes (not /delegate's)
            self.withdrawals.deleted(env.get("CNI_CONTAINERID", ""))
        try:
            with self._slot(env, client):
                code, stdout = self.service.serve(env, stdin)
        except Busy as busy:
            return self._refuse(env, stdin, busy)
        if self.dynamic is not None and code == 0:
            self.dynamic.added(env)  # a change made while its ADD ran is not missed
        return code, stdout

    def delegate(
        self,
        env: dict[str, str],
        stdin: bytes,
        attributes: dict[str, Any],
        client: socket.socket | None = None,
    ) -> tuple[int, str]:
        """A /delegate request: an ADD waits in the ADD lane, DEL and CHECK in the other."""
        try:
            with self._slot(env, client):
                return self.delegates.serve(env, stdin, attributes)
        except Busy as busy:
            return self._refuse(env, stdin, busy)

    @contextlib.contextmanager
    def _slot(self, env: dict[str, str], client: socket.socket | None) -> Iterator[Admitted]:
        """A slot in the command's lane; an ADD that waited for it runs only if it is
        still wanted: its client still there, its sandbox not DELed by the runtime
        meanwhile."""
        command, container = env.get("CNI_COMMAND", ""), env.get("CNI_CONTAINERID", "")
        arrived = time.monotonic()
        with self.admission.slot(command) as admitted:
            self.metrics.queue_wait.observe(admitted.waited, admitted.lane)
            if command == "ADD" and admitted.waited > 0:
                if self.withdrawals.since(container, arrived):
                    why = "its DEL came while it waited"
                elif peer_gone(client):
                    why = "its client went away while it waited"
                else:
                    why = ""
                if why:
                    raise self.admission.withdrawn(admitted.lane, admitted.waited, why)
            yield admitted

    def _refuse(self, env: dict[str, str], stdin: bytes, busy: Busy) -> tuple[int, str]:
        """The code 11 answer of a request that never started, in the request's version."""
        self.metrics.refused(env.get("CNI_COMMAND", ""), busy.lane, busy.reason)

        def refused(_: object) -> None:
            raise busy

        out = io.StringIO()
        return dispatch.run(env, stdin, out, refused), out.getvalue()

    def readiness(self) -> tuple[bool, list[str]]:
        reasons = []
        if self._stopping.is_set():
            reasons.append("shutting down")
        indicator = self.config.readiness_indicator_file
        if indicator and not os.path.exists(indicator):
            reasons.append(f"readiness indicator file {indicator} does not exist")
        if self.confgen is not None and not self.confgen.current:
            reasons.append(f"{self.confgen.path}: {self.confgen.problem or 'missing'}")
        if self.cluster is not None and not self.cluster.synced():
            reasons.append("the cluster caches have not synced yet")
        if self.admission.full(ADD):
            reasons.append(f"queue full: {self.admission.queued(ADD)} ADDs waiting")
        why = self.dhcp.reason() if self.dhcp is not None else None
        if why is not None:
            reasons.append(why)
        return not reasons, reasons

    def attachments(self) -> list[dict[str, Any]]:
        return summary(self.store)

    def metrics_text(self) -> str:
        lanes = {n: LaneLoad(self.admission.executing(n), self.admission.queued(n)) for n in LANES}
        return self.metrics.render(self.readiness()[0], lanes, self.admission.memory_load())

    def rejected(self, reason: str) -> None:
        self.metrics.rejected.inc(reason)

    # -- lifecycle -----------------------------------------------------------

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def start(self) -> None:
        for note in self.config.notes:
            log.warning("%s", note)
        if self.config.user_config_file:
            install_user_config(self.config)  # an OSError: the daemon does not start
        if self.dhcp is not None:
            self._spawn("dhcp-daemon", self.dhcp.run, self._stopping)
        if self.host_credentials is not None:
            # Before the conflist names them, and first: after an upgrade the host's copy is
            # the old pod's token, refused since that pod went.
            self.host_credentials.sync()
            self._spawn("host-credentials", self.host_credentials.run, self._stopping)
        self._unix = UnixServer(self.config.socket_path, self)
        self._bound[self.config.socket_path] = _file_id(self.config.socket_path)
        self._spawn("unix-server", self._unix.serve_forever)
        if self.confgen is not None:
            # Once the socket is served (the writer asks it): the runtime's first call
            # through the new config reaches this daemon. Ready at once if the primary is there.
            self.confgen.sync()
        if self.config.multus_socket_path:
            self._multus = UnixServer(self.config.multus_socket_path, self, MultusHandler)
            self._bound[self.config.multus_socket_path] = _file_id(self.config.multus_socket_path)
            self._spawn("multus-server", self._multus.serve_forever)
        if self.dynamic is not None:
            self._spawn(DYNAMIC_THREAD, self.dynamic.run)
        if self.cluster is not None:
            self.cluster.start(wait=0)  # DELs need no cache: serve while it syncs
        if self.config.metrics_address is not None:
            self._metrics_server = MetricsServer(self.config.metrics_address, self)
            self._spawn("metrics-server", self._metrics_server.serve_forever)
        if self.confgen is not None:
            self._spawn("confgen", self.confgen.run, self._stopping)
        if self.gc is not None:
            self._spawn(GC_THREAD, self.gc.run, self._stopping)
        metrics = self.config.metrics_address
        memory = self.admission.memory
        log.info(
            "serving on %s",
            self.config.socket_path,
            extra={
                "fields": {
                    "node": self.config.node_name,
                    "metrics": f"{metrics[0]}:{metrics[1]}" if metrics else "",
                    "multus_socket": self.config.multus_socket_path,
                    "cluster_cache": self.cluster is not None,
                    "memory_budget_mib": memory.limit >> 20 if memory else "off",
                }
            },
        )

    def stop(self) -> None:
        """Stop accepting, finish the requests in flight, clean up. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        # Waiting ADDs are answered code 11 now; DELs, CHECKs... still waiting are served
        # as the executing requests finish (their queueTimeout bounds it).
        self.admission.close((ADD,))
        if self.dynamic is not None:
            self.dynamic.stop()  # a change in progress finishes; none starts
        inflight = self.metrics.inflight
        log.info("shutting down", extra={"fields": {"inflight": inflight}})
        # Ours to remove only if we bound it and it is still ours: in an upgrade the next
        # daemon may have bound the path already.
        for path, bound in self._bound.items():
            if bound is not None and _file_id(path) == bound:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        for server in (self._unix, self._multus):
            if server is not None:
                server.shutdown()
        for unix in (self._unix, self._multus):
            if unix is not None:
                unix.server_close()  # joins the request threads
        # The metrics port last: while the requests drain, /readyz answers 503 "shutting
        # down" and /healthz 200 (the kubelet's probes see a draining daemon, not a dead one).
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        for t in self._threads:  # a change in progress finishes with the cluster still up
            if t.name == DYNAMIC_THREAD:
                t.join(timeout=DYNAMIC_JOIN)
        for t in self._threads:  # a GC pass in progress finishes its DELs
            if t.name == GC_THREAD:
                t.join(timeout=DYNAMIC_JOIN)
        if self.gc is not None:
            self.gc.close()
        if self.cluster is not None:
            self.cluster.close()
        self.devices.close()
        for t in self._threads:
            t.join(timeout=5)
        if self.dhcp is not None:  # last: the DELs in flight released their leases
            self.dhcp.stop()
        if self.confgen is not None and self.config.cleanup_config_on_exit:
            self.confgen.remove()
        log.info("stopped")


def _file_id(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None when there is none."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
