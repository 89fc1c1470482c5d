"""The releases a DEL skipped, kept on disk until they are done.

When a network's delegates fail their DEL, the sandbox's DEL still succeeds (the pod's
deletion must not hang) and the leak guard removes the interface, but the delegate's
allocation (an IPAM address, a lease) stays. Each such skipped release is recorded here,
one file per network of a sandbox under `<cniDir>/releases/`, beside the journal, with
all its DEL needs: the sandbox's journal holding that one network's entry (its config,
runtimeConfig, cached result, CNI_ARGS, CNI_PATH). multinetd's GC (daemon.gc) runs the
DEL again until the delegate succeeds, or until the network's own GC collected it.

Written only on failure (a DEL's common path never touches it), atomically and durably.
"""

from __future__ import annotations

import json
import os
import time

from multinet.cni.errors import CNIError, IOFailure
from multinet.engine.journal import Entry, Journal
from multinet.log import log
from multinet.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RELEASES_DIR = "releases"


@record()
class SkippedRelease:
    """One network of a deleted sandbox whose release is still owed."""

    key: str  # the record's file name, without .json
    journal: Journal  # the sandbox's journal with this network's entry alone
    error: str  # why its last DEL failed
    since: float  # when its release was first skipped (time.time())
    attempts: int = 1  # DELs that failed, the sandbox's own first

    @property
    def entry(self) -> Entry:
        return self.journal.entries[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "journal": self.journal.to_dict(),
            "error": self.error,
            "since": self.since,
            "attempts": self.attempts,
        }


def _key(journal: Journal, entry: Entry) -> str:
    import hashlib  # only a failed release pays for it

    raw = "\0".join((journal.container_id, journal.ifname, entry.ifname, entry.name))
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:40]


class FileReleaseStore:
    """The records under `<cniDir>/releases/` (engine.ports.ReleaseStore)."""

    def __init__(self, cni_dir: str) -> None:
        self.dir = os.path.join(cni_dir, RELEASES_DIR)

    def record(self, journal: Journal, entry: Entry, error: CNIError) -> None:
        """Keep the release of `entry` (a network of `journal`'s sandbox) as owed."""
        one = Journal.from_dict({**journal.to_dict(), "entries": [entry.to_dict()]})
        self.save(SkippedRelease(_key(journal, entry), one, error.msg, time.time()))

    def save(self, rec: SkippedRelease) -> None:
        """Write the record atomically and durably (rare: only failures are written)."""
        path = os.path.join(self.dir, rec.key + ".json")
        tmp = path + ".tmp"
        try:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, json.dumps(rec.to_dict()).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as e:
            raise IOFailure(f"cannot record a skipped release in {path}", str(e)) from None

    def count(self) -> int:
        """How many records there are (without reading them: the metrics' gauge)."""
        try:
            return sum(1 for n in os.listdir(self.dir) if n.endswith(".json"))
        except OSError:
            return 0

    def pending(self) -> list[SkippedRelease]:
        """Every record, oldest first; one that cannot be read is logged and left."""
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise IOFailure(f"cannot list the skipped releases in {self.dir}", str(e)) from None
        out = []
        for name in names:
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    raw = json.load(f)
                out.append(
                    SkippedRelease(
                        key=name[: -len(".json")],
                        journal=Journal.from_dict(raw["journal"]),
                        error=str(raw.get("error", "")),
                        since=float(raw["since"]),
                        attempts=int(raw.get("attempts", 1)),
                    )
                )
            except FileNotFoundError:
                continue  # done meanwhile
            except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
                log.warning("skipped release record %s is unreadable: %s", path, e)
        out.sort(key=lambda r: r.since)
        return out

    def drop(self, rec: SkippedRelease) -> None:
        try:
            os.unlink(os.path.join(self.dir, rec.key + ".json"))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise IOFailure(f"cannot remove the skipped release {rec.key}", str(e)) from None
