"""Dynamic networks: when the networks annotation of a running pod on this node changes,
make the pod's interfaces follow it (`dynamicNetworks: true`; docs/dynamic-networks.md).

The pods' watch (cluster.cache) tells this controller of every change; a pod whose
networks annotation changed is queued, and every pod multinet attached is queued after
each (re)list of the watch, so that changes made while the daemon was down or the watch
was broken are caught. One worker thread applies the changes (meta.dynamic), so they
never take more than one of the daemon's threads from the CNI requests; the queue
(daemon.workqueue) gives a pod out at most once per `interval` seconds however often
its annotation flaps, and each reconcile reads the newest annotation, so a burst of
changes costs one reconcile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from multinet.cluster.base import Cluster, Pod
from multinet.cni.errors import CNIError, IOFailure, TryAgainLater, UnknownContainer
from multinet.cni.request import parse_args
from multinet.config import netconf
from multinet.daemon.metrics import DaemonMetrics
from multinet.daemon.service import CNIService
from multinet.daemon.workqueue import WorkQueue
from multinet.engine.dynamic import Outcome, request_for
from multinet.engine.journal import FileJournalStore, Journal
from multinet.meta.wiring import dynamic_for
from multinet.networks.selection import NETWORKS_ANNOTATION

log = logging.getLogger("multinet.daemon")

DEFAULT_INTERVAL = 1.0  # seconds between two reconciles of one pod
MAX_BACKOFF = 60.0  # seconds, for a pod whose change failed for a transient reason
Key = tuple[str, str]  # (namespace, name)
EVERY_POD: Key = ("", "")  # every pod multinet attached on this node
UNKNOWN = "\x00"  # a rejected annotation's value when the pod could not be read


class DynamicNetworks:
    def __init__(
        self,
        store: FileJournalStore,
        service: CNIService,
        cluster: Cluster,
        metrics: DaemonMetrics,
        interval: float = DEFAULT_INTERVAL,
        apply: Callable[[Journal], Outcome | None] | None = None,
    ) -> None:
        self.store = store
        # What reconciles one sandbox (meta.dynamic; a fake in unit tests).
        self.apply = apply or self._reconcile_one
        self.service = service
        self.cluster = cluster
        self.metrics = metrics
        # The pods to reconcile; its back-off counts a pod's transient failures.
        self.queue: WorkQueue[Key] = WorkQueue(interval, MAX_BACKOFF)
        self._rejected: dict[Key, str] = {}  # pod -> the annotation last warned about
        self._hints: dict[Key, tuple[str, str]] = {}  # pod -> its sandbox a CNI ADD named
        # Guards the memos: the watch's thread, the request threads and the worker all
        # touch them.
        self._lock = threading.Lock()

    # -- told by the pods' watch (its thread: only queue) -----------------------

    def on_change(self, old: Pod | None, new: Pod | None) -> None:
        # A new pod's sandbox ADD reads its annotation (and queues the pod when it is
        # done: `added` from the daemon); a deleted one's DEL removes everything.
        if new is None:
            if old is not None:
                self._forget((old.namespace, old.name))
            return
        if old is None:
            return
        if new.annotations.get(NETWORKS_ANNOTATION) != old.annotations.get(NETWORKS_ANNOTATION):
            self.queue.add((new.namespace, new.name))

    def on_list(self) -> None:
        self.queue.add(EVERY_POD)

    def added(self, env: Mapping[str, str]) -> None:
        """A CNI request succeeded: after an ADD, its pod is reconciled once (the
        annotation may have changed between the ADD's planning and its journal)."""
        if env.get("CNI_COMMAND") != "ADD":
            return
        args = dict(parse_args(env.get("CNI_ARGS", ""), lenient=True))
        namespace, name = args.get("K8S_POD_NAMESPACE"), args.get("K8S_POD_NAME")
        if namespace and name:
            with self._lock:  # the sandbox's journal, so the reconcile needs no scan
                self._hints[(namespace, name)] = (
                    env.get("CNI_CONTAINERID", ""),
                    env.get("CNI_IFNAME", ""),
                )
            self.queue.add((namespace, name))

    def on_nad(self, old: object, new: object) -> None:
        """A NAD came, went or changed: the changes it may have made possible (a NAD
        that did not exist yet) are tried again."""
        with self._lock:
            rejected = list(self._rejected)
        for key in rejected:
            self.queue.add(key)

    def _forget(self, key: Key) -> None:
        """Drop what is remembered of the pod (deleted, or not multinet's)."""
        self.queue.forget(key)
        with self._lock:
            self._rejected.pop(key, None)
            self._hints.pop(key, None)

    # -- the worker ------------------------------------------------------------

    def run(self) -> None:
        """Reconcile the queued pods until `stop`."""
        while (key := self.queue.get()) is not None:
            try:
                self.reconcile(*key)
            except Exception:  # a bug: logged, the controller lives
                log.exception("dynamic networks: reconcile of %s/%s failed", *key)
            finally:
                self.queue.done(key)

    def stop(self) -> None:
        """A reconcile in progress finishes; none starts."""
        self.queue.shut_down()

    def reconcile(self, namespace: str, name: str) -> None:
        """Make each sandbox of the pod that multinet attached follow its annotation."""
        key = (namespace, name)
        if key == EVERY_POD:
            self._queue_every_pod()
            return
        journals = self._sandboxes(key)
        if not journals:
            self._forget(key)  # not (or no longer) ours
            return
        retry = ""
        for journal in journals:
            try:
                outcome = self.apply(journal)
            except (TryAgainLater, IOFailure) as e:  # transient, or the node's disk
                retry = str(e)
                continue
            except CNIError as e:
                self._reject(journal, key, e)
                continue
            with self._lock:
                self._rejected.pop(key, None)
            if outcome is not None and outcome.unreleased:
                retry = f"the release of {', '.join(e.ifname for e in outcome.unreleased)} failed"
            if outcome is not None and (outcome.changed or outcome.failed):
                self.metrics.network_changes.inc("applied")
                log.info(
                    "%s/%s: networks changed",
                    *key,
                    extra={"fields": _fields(outcome)},
                )
        if retry:
            self._retry(key, retry)
        else:
            self.queue.forget(key)

    def _queue_every_pod(self) -> None:
        """After a (re)list: every pod multinet attached here, its changes perhaps missed."""
        for journal in self.store.journals():
            if journal.pod.get("name"):
                self.queue.add((journal.pod.get("namespace", ""), journal.pod["name"]))

    def _sandboxes(self, key: Key) -> list[Journal]:
        """The pod's journals: the one a CNI ADD just named, else the store's of the pod.
        An incomplete one too: its ADD may be running, and the reconcile waits for it on
        the sandbox's lock (then finds it complete, or gone)."""
        with self._lock:
            hint = self._hints.pop(key, None)
        if hint is not None:
            try:
                journal = self.store.load(*hint)
            except CNIError:
                journal = None
            if journal is not None:
                return [journal]
        return self.store.by_pod(*key)

    def _retry(self, key: Key, why: str) -> None:
        """Transient: the pod again after a back-off (doubling, up to MAX_BACKOFF)."""
        delay = self.queue.add_rate_limited(key)
        log.warning("%s/%s: network change incomplete (%s): retry in %gs", *key, why, delay)
        self.metrics.network_changes.inc("failed")

    def _reconcile_one(self, journal: Journal) -> Outcome | None:
        req = request_for(journal, self.service.own_netconf(journal.cni_version))
        try:
            conf = netconf.load(req.config)
        except CNIError as e:
            log.warning(
                "%s: its journal's netconf no longer loads (%s): skipped", req.container_id, e
            )
            return None
        if not conf.uses_cluster:
            return None
        try:
            return dynamic_for(self.service.verbs(conf, req)).reconcile(req)
        except UnknownContainer:
            return None  # the pod is gone or is another one now: its DEL comes

    def _reject(self, journal: Journal, key: Key, error: CNIError) -> None:
        """The new annotation cannot be honoured: nothing changed; one warning per value."""
        log.warning("%s/%s: network change rejected: %s", *key, error)
        self.metrics.network_changes.inc("rejected")
        try:
            pod = self.cluster.get_pod(*key)
        except CNIError:
            pod = None  # the API is away: the log says it
        value = pod.annotations.get(NETWORKS_ANNOTATION, "") if pod is not None else UNKNOWN
        with self._lock:
            told = self._rejected.get(key) == value
            self._rejected[key] = value  # a NAD event tries it again
        if pod is None or told:
            return
        self.cluster.emit_event(
            pod, "NetworkChangeRejected", f"networks annotation not applied: {error}", warning=True
        )


def _fields(outcome: Outcome) -> dict[str, str]:
    return {
        "added": ",".join(e.ifname for e in outcome.added),
        "removed": ",".join(e.ifname for e in outcome.removed),
        "failed": ",".join(ifname for _, ifname, _ in outcome.failed),
        "recovered": ",".join(e.ifname for e in outcome.recovered),
    }
