"""The host's GC gate: what may allocate holds it shared, a CNI GC holds it alone.

A delegate's GC releases every allocation it holds that `cni.dev/valid-attachments` does
not name. multinetd's GC (daemon.gc) names the attachments the journals record; an ADD
that started after it read them would have its fresh address taken away. So an ADD, or a
change of a running pod, holds `<cniDir>/gc.lock` shared (flock: between processes, thin
mode's included, and between threads) for as long as it runs, and so does CHECK (every
non-lenient engine.Engine.sandbox: simpler than telling the verbs apart); multinetd's GC
reads the journals and sends its GCs holding it exclusively. DEL and GC's own DELs never
take it, nor does a GC the runtime sends (meta.verbs.Verbs.gc): the runtime names the
valid attachments itself, and ordering its own ADDs against its GC is its part.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from multinet.cni.errors import IOFailure

GATE_FILE = "gc.lock"
POLL = 0.05  # seconds between two tries for the exclusive lock


class HostGate:
    def __init__(self, cni_dir: str) -> None:
        self.cni_dir = cni_dir
        self.path = os.path.join(cni_dir, GATE_FILE)

    def _open(self, create: bool) -> int | None:
        if create:
            try:
                os.makedirs(self.cni_dir, mode=0o700, exist_ok=True)
            except OSError as e:
                raise IOFailure(
                    f"cannot create cniDir {self.cni_dir}, where the journal and its GC gate live",
                    str(e),
                ) from None
        elif not os.path.isdir(self.cni_dir):
            return None  # no journal can be here: nothing for a GC to read
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise IOFailure(
                f"cannot open the GC gate {self.path} beside the journal", str(e)
            ) from None

    @contextlib.contextmanager
    def shared(self, create: bool = True) -> Iterator[None]:
        """Held while something may allocate; waits for a GC in progress."""
        fd = self._open(create)
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        """Held alone (True), or not within `timeout` seconds (False: the ADDs in flight
        never left it free; flock does not queue a writer before new readers)."""
        fd = self._open(True)
        assert fd is not None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        held = False
                        break
                    time.sleep(POLL)
            yield held
        finally:
            os.close(fd)
