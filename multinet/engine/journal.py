"""Crash-safe per-attachment record of what multinet attached to a container.

One JSON file per (container ID, ifname) under `<cniDir>/journal/`, replaced
atomically (write, rename); only a save asked to be durable (the last of an ADD,
with `journalFsync`) also fsyncs the file and the directory. ADD records every
planned delegate *before* the first one runs, so a DEL after a kill -9 at any point
finds everything to remove. A per-key flock serialises operations on the same container across
processes and threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator

from multinet.cni.errors import CNIError, IOFailure
from multinet.engine.plan import NO_PASSENGERS, Attachment, Passengers
from multinet.record import field, fields, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ADDING = "adding"
ADDED = "added"
# DEL: the network's delegates failed their DEL (its IPAM could not release the address:
# a DHCP lease, say) and the pod's deletion went on without it; the leak guard removed
# its interface. The reporter is told, the log names it.
RELEASE_SKIPPED = "release-skipped"
# A network a change of the running pod removes: its DEL may not have run yet (a daemon
# killed mid-change); the next reconcile, or the sandbox's DEL, finishes it.
REMOVING = "removing"
MAX_PLAIN_NAME = 200  # bytes of "<container ID>@<ifname>" kept as the file name itself


@record()
class Entry:
    """One delegate network as attached: enough to DEL/CHECK it with nothing else."""

    name: str  # the network-status name: "namespace/nad" or the config name
    ifname: str
    config: dict[str, Any]  # NetworkConfig.to_dict(), exactly what ADD ran
    runtime_config: dict[str, Any] = field(default_factory=dict)
    state: str = ADDING
    result: dict[str, Any] | None = None
    # As in the plan (plan.Attachment): the cluster network; the default-route gateways
    # this network carries; on the cluster network, the families whose route moved away.
    default: bool = False
    default_route: tuple[str, ...] = ()
    replaced_default_routes: tuple[int, ...] = ()
    drop_default_routes: bool = False
    source_routing: bool = False
    cni_args: tuple[tuple[str, str], ...] = ()
    k8s: Passengers = NO_PASSENGERS  # the network model's, carried from the plan
    # The NPWG device-info object read once ADD succeeded (network-status device-info).
    device_info: dict[str, Any] | None = None
    # Added to the running pod after its sandbox's ADD (a dynamic network): when.
    added_at: float | None = None

    @classmethod
    def planned(cls, att: Attachment) -> Entry:
        """The journal's form of a planned attachment, before its delegate runs: every
        field the two records share, as the plan has it (CARRIED)."""
        entry = cls(att.name, att.ifname, att.network.to_dict(), dict(att.runtime_config))
        for name in CARRIED:
            setattr(entry, name, getattr(att, name))
        return entry

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON: the passengers' fields flat among the entry's own (the
        journal's format before they were one record)."""
        # Shallow: json.dumps walks the nested dicts itself (asdict deep-copies them).
        d = dict(vars(self))
        d.update(d.pop("k8s")._asdict())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entry:
        d = dict(d)
        # Journals written before these fields were typed kept them in `meta`.
        meta = d.pop("meta", None) or {}
        for key in ("default", "default_route", "replaced_default_routes"):
            if key in meta and key not in d:
                d[key] = meta[key]
        known = set(fields(cls))
        k8s = Passengers(**{k: d.pop(k) for k in PASSENGERS if k in d})
        entry = cls(**{k: v for k, v in d.items() if k in known and k != "k8s"}, k8s=k8s)
        entry.default_route = tuple(entry.default_route)
        entry.replaced_default_routes = tuple(entry.replaced_default_routes)
        entry.cni_args = tuple((str(k), str(v)) for k, v in entry.cni_args)
        return entry


# What Entry.planned copies from the plan: the fields both records declare, but those the
# entry keeps in its own form (the network's config as a dict, a mutable runtimeConfig).
PASSENGERS = Passengers._fields
CARRIED = tuple(
    name
    for name in fields(Entry)
    if name in fields(Attachment) and name not in ("name", "ifname", "runtime_config")
)


@record()
class Journal:
    container_id: str
    ifname: str
    netns: str = ""
    cni_version: str = ""
    args: str = ""
    pod: dict[str, str] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    complete: bool = False
    # What a later change of the running pod needs to run delegates as the ADD did: the
    # netconf (as the daemon overlaid it) and CNI_PATH.
    netconf: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    # A change of the running pod whose network-status write failed: the next reconcile
    # writes it again.
    status_pending: bool = False

    def to_dict(self) -> dict[str, Any]:
        # Shallow: json.dumps walks the nested dicts itself (asdict deep-copies them).
        return {**vars(self), "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Journal:
        entries = [Entry.from_dict(e) for e in d.get("entries", [])]
        return cls(**{**d, "entries": entries})


class FileJournalStore:
    """The journal on disk (engine.ports.JournalStore)."""

    def __init__(self, cni_dir: str) -> None:
        self.dir = os.path.join(cni_dir, "journal")

    def _base(self, container_id: str, ifname: str) -> str:
        # Both parts are validated (no '/'); '@' cannot occur in either. The spec puts no
        # limit on a container ID's length: one that would not fit a file name (255 bytes
        # with the suffixes) is keyed by its hash, marked by '#', which no ID contains.
        name = f"{container_id}@{ifname}"
        if len(name.encode()) > MAX_PLAIN_NAME:
            import hashlib  # rare: OpenSSL's ~2 ms off every other call's start

            digest = hashlib.sha256(container_id.encode("utf-8", "surrogateescape")).hexdigest()
            name = f"#{digest}@{ifname}"
        return os.path.join(self.dir, name)

    def _ensure_dir(self) -> None:
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
        except OSError as e:
            raise IOFailure(f"cannot create journal directory {self.dir}", str(e)) from None

    @contextlib.contextmanager
    def lock(self, container_id: str, ifname: str, create: bool = True) -> Iterator[None]:
        if not create and not os.path.isdir(self.dir):
            yield  # no journal can be here, nor a lock to take: nothing is created
            return
        self._ensure_dir()
        path = self._base(container_id, ifname) + ".lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # remove() unlinks the lock file while holding it: if that happened while
            # we waited, our lock is on a dead inode and we must take the new one.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            yield
        finally:
            # No journal left (a failed ADD, a DEL of nothing): drop the lock file too,
            # unless remove() already did and someone else now holds a new one.
            with contextlib.suppress(FileNotFoundError):
                if not os.path.exists(self._base(container_id, ifname) + ".json") and (
                    os.stat(path).st_ino == os.fstat(fd).st_ino
                ):
                    os.unlink(path)
            os.close(fd)

    def load(self, container_id: str, ifname: str) -> Journal | None:
        path = self._base(container_id, ifname) + ".json"
        try:
            with open(path, "rb") as f:
                return Journal.from_dict(json.load(f))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise IOFailure(f"journal {path} is unreadable", str(e)) from None

    def save(self, journal: Journal, durable: bool = True) -> None:
        """Replace the journal atomically (write, rename): after a crash of this process
        any reader sees the old or the new one, whole. `durable` also fsyncs file and
        directory, which only a power loss needs: ADD makes its intermediate saves
        without it (after a reboot the pod's interfaces are gone anyway, and DEL without
        a journal still releases what the configuration names) and its last one with it."""
        self._ensure_dir()
        base = self._base(journal.container_id, journal.ifname)
        tmp = base + ".tmp"
        data = json.dumps(journal.to_dict()).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, base + ".json")
            if durable:
                dfd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as e:
            raise IOFailure(f"cannot write journal {base}.json", str(e)) from None

    def remove(self, container_id: str, ifname: str) -> None:
        base = self._base(container_id, ifname)
        for suffix in (".json", ".tmp", ".lock"):
            try:
                os.unlink(base + suffix)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise IOFailure(f"cannot remove journal {base}{suffix}", str(e)) from None

    def keys(self) -> list[tuple[str, str]]:
        """(container ID, ifname) of every journal on disk."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise IOFailure(f"cannot list the journals in {self.dir}", str(e)) from None
        keys = []
        for n in sorted(names):
            if not n.endswith(".json"):
                continue
            cid, _, ifname = n[: -len(".json")].rpartition("@")
            if cid.startswith("#"):  # a hashed key: the journal knows the real ID
                try:
                    with open(os.path.join(self.dir, n), "rb") as f:
                        cid = json.load(f)["container_id"]
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # unreadable: load() reports it when asked by its key
            keys.append((cid, ifname))
        return keys

    def modified(self, container_id: str, ifname: str) -> float | None:
        """When the journal was last written (time.time()), None when there is none:
        multinetd's GC leaves a journal younger than its grace period alone."""
        try:
            return os.stat(self._base(container_id, ifname) + ".json").st_mtime
        except FileNotFoundError:
            return None
        except OSError as e:
            raise IOFailure(f"cannot stat the journal of {container_id}", str(e)) from None

    # -- queries (the daemon's: dynamic networks, /delegate, the attachments API) --

    def by_container(self, container_id: str) -> list[Journal]:
        """The journals of one container (one per CNI_IFNAME the runtime gave it)."""
        found = (self.load(cid, ifname) for cid, ifname in self.keys() if cid == container_id)
        return [j for j in found if j is not None]

    def journals(self) -> Iterator[Journal]:
        """Every journal that can be read (one that cannot is skipped: its key's load
        reports it)."""
        for cid, ifname in self.keys():
            try:
                journal = self.load(cid, ifname)
            except CNIError:
                continue
            if journal is not None:
                yield journal

    def by_pod(self, namespace: str, name: str) -> list[Journal]:
        """The journals of one pod's sandboxes (complete or not)."""
        return [
            j
            for j in self.journals()
            if j.pod.get("name") == name and j.pod.get("namespace") == namespace
        ]


def summary(store: FileJournalStore) -> list[dict[str, Any]]:
    """One row per journal, for `multinetctl attachments` and the daemon's API."""
    rows = []
    for cid, ifname in store.keys():
        j = store.load(cid, ifname)
        if j is None:
            continue
        rows.append(
            {
                "containerID": cid,
                "ifname": ifname,
                "netns": j.netns,
                "pod": j.pod,
                "complete": j.complete,
                "networks": [
                    {
                        "name": e.name,
                        "interface": e.ifname,
                        "state": e.state,
                        "origin": e.k8s.origin,
                        "added": "later" if e.added_at is not None else "at creation",
                    }
                    for e in j.entries
                ],
            }
        )
    return rows
