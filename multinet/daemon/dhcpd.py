"""multinetd supervises the reference DHCP client daemon (`dhcp daemon -socketpath P`).

The reference `dhcp` IPAM plugin only talks to that daemon, which must run in the host's
network namespace for as long as any pod holds a lease (it renews them). With
`dhcpDaemon: true` multinetd starts it, restarts it with back-off when it dies, and stops
it on shutdown; its state shows in /readyz and in `multinet_dhcp_daemon_up`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from multinet.engine import dhcp

log = logging.getLogger("multinet.daemon")

BACKOFF_INITIAL = 0.5  # seconds before the first restart
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # a daemon that ran this long restarts without accumulated back-off
STOP_GRACE = 5.0
START_TIMEOUT = 5.0  # for its socket to answer

Spawn = Callable[[Sequence[str]], "subprocess.Popen[bytes]"]


def find_binary(configured: str, bin_dirs: Sequence[str]) -> str:
    """The dhcp plugin executable: the configured path, else the first `dhcp` found."""
    if configured:
        return configured
    for d in bin_dirs:
        path = os.path.join(d, "dhcp")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return os.path.join(bin_dirs[0], "dhcp") if bin_dirs else "dhcp"


def _spawn(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, start_new_session=True)


class DhcpSupervisor:
    def __init__(
        self,
        binary: str,
        socket_path: str = dhcp.DEFAULT_SOCKET,
        *,
        spawn: Spawn = _spawn,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.binary, self.socket_path = binary, socket_path
        self.spawn = spawn
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.restarts = 0
        self.problem = "not started"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def argv(self) -> list[str]:
        return [self.binary, "daemon", "-socketpath", self.socket_path]

    def up(self) -> bool:
        """Running and answering on its socket."""
        with self._lock:
            proc = self._proc
        return proc is not None and proc.poll() is None and dhcp.probe(self.socket_path) is None

    def reason(self) -> str | None:
        """Why it is not up (for /readyz), or None."""
        if self.up():
            return None
        return f"the DHCP client daemon ({self.socket_path}) is not running: {self.problem}"

    def _start_once(self) -> subprocess.Popen[bytes] | None:
        if dhcp.probe(self.socket_path) is None:
            # Someone else's daemon answers there: leave it be, but do not supervise it.
            self.problem = f"another process serves {self.socket_path}"
            log.warning("dhcp daemon: %s; not starting one", self.problem)
            return None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # a dead daemon's socket file: it cannot bind over it
        os.makedirs(os.path.dirname(self.socket_path) or ".", exist_ok=True)
        try:
            proc = self.spawn(self.argv)
        except OSError as e:
            self.problem = f"cannot run {self.binary}: {e.strerror or e}"
            log.error("dhcp daemon: %s", self.problem)
            return None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if dhcp.probe(self.socket_path) is None:
                break
            self._stopping.wait(0.05)
        log.info("dhcp daemon started", extra={"fields": {"pid": proc.pid}})
        self.problem = "starting"
        return proc

    def run(self, stopping: threading.Event | None = None) -> None:
        """Keep the daemon running until `stopping` (or stop()) is set."""
        stop = stopping or self._stopping
        backoff = self.backoff_initial
        while not (stop.is_set() or self._stopping.is_set()):
            started = time.monotonic()
            proc = self._start_once()
            with self._lock:
                self._proc = proc
            if proc is not None:
                self.problem = "running"
                while proc.poll() is None:
                    if stop.wait(0.2) or self._stopping.is_set():
                        return
                self.problem = f"exited with status {proc.returncode}"
                log.warning("dhcp daemon %s; restarting in %.1fs", self.problem, backoff)
            if time.monotonic() - started > STABLE_AFTER:
                backoff = self.backoff_initial
            if stop.wait(backoff):
                return
            self.restarts += 1
            backoff = min(backoff * 2, self.backoff_max)

    def stop(self) -> None:
        """Stop supervising and terminate the daemon (it is ours). Idempotent."""
        self._stopping.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self.problem = "stopped"
