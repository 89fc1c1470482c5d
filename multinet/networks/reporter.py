"""Tell the cluster what happened to a pod's networks: network-status, events, records."""

from __future__ import annotations

from collections.abc import Iterable

from multinet.cluster.records import StatusRecords
from multinet.cni.errors import CNIError, UnknownContainer
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine.journal import ADDED, Entry, Journal
from multinet.engine.plan import Plan
from multinet.networks import devices
from multinet.networks.planner import pod_from_ref
from multinet.networks.status import network_status

TYPE_CHECKING = False

if TYPE_CHECKING:
    from multinet.cluster.base import Cluster, Pod  # a DEL's path need not import it
    from multinet.engine.dynamic import Outcome  # the daemon's dynamic networks only


class PodReporter:
    """Tell the cluster what happened: network-status on success, events either way."""

    def __init__(self, cluster: Cluster, events: bool = True) -> None:
        self.cluster = cluster
        self.events = events

    def added(self, conf: NetConf, req: Request, plan: Plan, journal: Journal) -> None:
        if not plan.pod:
            return
        pod = pod_from_ref(dict(plan.pod))
        _read_device_info(journal.entries)
        self.cluster.set_network_status(pod, network_status(journal.entries))  # may roll back
        if self.events:
            for entry in journal.entries:  # the cluster network's too, as Multus
                self._interface_event(pod, "AddedInterface", "Add", entry)

    def changed(self, conf: NetConf, req: Request, journal: Journal, outcome: Outcome) -> None:
        """After a change of the running pod's networks (meta.dynamic): network-status
        rewritten whole (one merge patch), an event per interface added or removed, a
        warning per network that could not be."""
        if not journal.pod:
            return
        pod = pod_from_ref(dict(journal.pod))
        # Every attached network's not read yet: a status written late (after a crash or
        # a refused patch) still carries the device-info of what was added then.
        _read_device_info(e for e in journal.entries if e.state == ADDED and e.device_info is None)
        for entry in outcome.removed:
            devices.remove_device_info(entry.k8s.device_info_file)
        if self.events:
            for entry in outcome.added:
                self._interface_event(pod, "AddedInterface", "Add", entry)
            for entry in outcome.removed:
                self._interface_event(pod, "RemovedInterface", "Remove", entry)
            for name, ifname, error in outcome.failed:
                self.cluster.emit_event(
                    pod, "FailedNetworkChange", f"{ifname} from {name}: {error}", warning=True
                )
        self.cluster.set_network_status(pod, network_status(journal.entries))

    def _interface_event(self, pod: Pod, reason: str, verb: str, entry: Entry) -> None:
        if entry.result is None:
            return
        # Multus's wording, which users grep for: "Add net1 [10.1.0.5/24] from ns/nad"
        ips = ",".join(str(ip.get("address")) for ip in entry.result.get("ips", []))
        self.cluster.emit_event(pod, reason, f"{verb} {entry.ifname} [{ips}] from {entry.name}")

    def failed(self, conf: NetConf, req: Request, plan: Plan | None, error: CNIError) -> None:
        for att in plan.attachments if plan is not None else ():
            devices.remove_device_info(att.k8s.device_info_file)  # the ADD was rolled back
        if plan is not None and plan.pod:
            pod = pod_from_ref(dict(plan.pod))
        else:
            # Planning itself failed (a malformed annotation, say): the user looks at the pod.
            namespace, name = req.arg("K8S_POD_NAMESPACE"), req.arg("K8S_POD_NAME")
            if not namespace or not name or isinstance(error, UnknownContainer):
                return
            pod = pod_from_ref(
                {"namespace": namespace, "name": name, "uid": req.arg("K8S_POD_UID") or ""}
            )
        self.cluster.emit_event(pod, "FailedAttach", f"ADD failed: {error}", warning=True)

    def deleted(self, conf: NetConf, req: Request, journal: Journal) -> None:
        """Drop the pod's local network-status record (multinetctl's copy), or one file
        per pod would pile up on every node. The API annotation goes with the pod. The
        attachments' CNI device-info files go too."""
        for entry in journal.entries:
            devices.remove_device_info(entry.k8s.device_info_file)
        if journal.pod.get("namespace") and journal.pod.get("name"):
            StatusRecords(conf.cni_dir).remove_status(journal.pod["namespace"], journal.pod["name"])


def _read_device_info(entries: Iterable[Entry]) -> None:
    """The NPWG device-info of each network that has one, into its entry (network-status
    device-info; journaled by the save that follows)."""
    for entry in entries:
        if entry.k8s.device_info_file or entry.k8s.device_plugin_info_file:
            entry.device_info = devices.read_device_info(
                entry.k8s.device_info_file, entry.k8s.device_plugin_info_file
            )
