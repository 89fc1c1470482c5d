"""A multinetd started for a benchmark: its config file, process, socket and RSS."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multinet.shim import client as shim

CACHE_GAUGE = re.compile(r'^multinet_cache_objects\{kind="([a-z_]+)"\} (\d+)$', re.M)
DURATION = re.compile(
    r'^multinet_request_duration_seconds_(sum|count)\{command="([A-Z]+)"\} (\S+)$', re.M
)
DELEGATE_SUM = re.compile(
    r'^multinet_delegate_duration_seconds_sum\{plugin="[^"]*",command="([A-Z]+)"\} (\S+)$', re.M
)


class BenchError(Exception):
    """A measurement could not be made (a failed ADD, a daemon that did not start)."""


class Daemon:
    """`multinetd --config FILE` in its own session (Ctrl-C in the terminal reaches only
    the benchmark, which then stops the daemon itself, in order); `prefix` runs before it
    and execs it (`bench.cgroup.MemoryCgroup.wrapper`: the pid stays the daemon's)."""

    def __init__(
        self, name: str, workdir: Path, config: Mapping[str, Any], prefix: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.socket = str(config["daemonSocketPath"])
        self.config_path = workdir / f"daemon-{name}.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = workdir / f"daemon-{name}.log"
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "multinet.daemon.main",
                "--config",
                str(self.config_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, str]:
        status, body = shim.request(self.socket, "GET", path, timeout=timeout)
        return status, body.decode(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /readyz answers 200 (the caches synced, when it has any)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"multinetd {self.name} exited {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                status, last = self.get("/readyz", timeout=2)
                if status == 200:
                    return
            except shim.DaemonUnavailable as e:
                last = str(e)
            time.sleep(0.05)
        raise BenchError(f"multinetd {self.name} not ready after {timeout:.0f} s: {last}")

    def cache_sizes(self) -> dict[str, int]:
        """The daemon's cache gauges: {"pods": n, "network_attachment_definitions": n}."""
        _, text = self.get("/metrics")
        return {kind: int(n) for kind, n in CACHE_GAUGE.findall(text)}

    def wait_cached(self, kind: str, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        have = -1
        while time.monotonic() < deadline:
            have = self.cache_sizes().get(kind, -1)
            if have >= count:
                return
            time.sleep(0.05)
        raise BenchError(f"multinetd {self.name}: {have} {kind} cached, expected {count}")

    def request_time(self) -> dict[str, tuple[float, int, float]]:
        """{command: (seconds serving, requests, seconds in delegates)}, cumulative, from
        the daemon's histograms (delegate time summed over plugin types)."""
        text = self.metrics()
        served: dict[str, list[float]] = {}
        for part, command, value in DURATION.findall(text):
            served.setdefault(command, [0.0, 0.0, 0.0])[0 if part == "sum" else 1] = float(value)
        for command, value in DELEGATE_SUM.findall(text):
            served.setdefault(command, [0.0, 0.0, 0.0])[2] += float(value)
        return {c: (v[0], int(v[1]), v[2]) for c, v in served.items()}

    def metrics(self) -> str:
        return self.get("/metrics")[1]

    def cni(self, env: dict[str, str], stdin: bytes) -> tuple[int, str]:
        """One CNI request over the socket, exactly as the shim sends it."""
        return shim.call_daemon(self.socket, env, stdin)

    def _status(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise BenchError(f"no {field} for multinetd {self.name} (pid {self.pid})")

    def rss_kib(self) -> int:
        """VmRSS from /proc/PID/status, in KiB."""
        return self._status("VmRSS")

    def threads(self) -> int:
        return self._status("Threads")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful: finishes the requests in flight), SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
