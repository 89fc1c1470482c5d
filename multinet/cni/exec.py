"""Find a delegate plugin by `type` and run it with the CNI protocol."""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multinet.cni.errors import (
    DELEGATE_FAILED,
    INTERNAL_ERROR,
    DelegateError,
    DelegateTimedOut,
    InvalidConfig,
    IOFailure,
    PluginNotFound,
)
from multinet.cni.strictjson import loads

DEFAULT_TIMEOUT = 60.0

# Told of every delegate run: (plugin type, command, seconds, succeeded). The daemon
# passes one to feed its latency metrics; it must be cheap and must not raise.
Observer = Callable[[str, str, float, bool], None]


def check_type(plugin_type: object) -> str:
    """A delegate `type` is a bare file name: a path or `..` would escape CNI_PATH."""
    if not isinstance(plugin_type, str) or not plugin_type:
        raise InvalidConfig(
            f"plugin type must be a non-empty string, got {json.dumps(plugin_type)}"
        )
    if "/" in plugin_type or plugin_type in (".", "..") or "\x00" in plugin_type:
        raise InvalidConfig(
            f"plugin type {plugin_type!r} is invalid: it must be a file name "
            "found in binDir or CNI_PATH, not a path"
        )
    return plugin_type


def find_plugin(plugin_type: object, dirs: Sequence[str], root: str = "") -> str:
    """The plugin's path; with `root` (a host root to chroot into), the search is under it
    and the path returned is the one inside the root."""
    name = check_type(plugin_type)
    for d in dirs:
        candidate = os.path.join(d, name)
        seen = os.path.join(root, candidate.lstrip("/")) if root else candidate
        if os.path.isfile(seen) and os.access(seen, os.X_OK):
            return candidate
    where = f" under {root}" if root else ""
    raise PluginNotFound(f"plugin type {name!r} not found", f"searched {list(dirs)}{where}")


@dataclass(frozen=True)
class Invocation:
    """What every delegate of one request shares: the CNI_* environment and search path."""

    container_id: str
    netns: str
    ifname: str
    args: str = ""
    path: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    observer: Observer | None = field(default=None, compare=False)
    # The netconf's hostRoot: delegates run chrooted into it (Multus's chrootDir), so they
    # see the host's files (/run/flannel, /var/run/calico, iptables, /var/lib/cni).
    root: str = ""

    def environ(self, command: str) -> dict[str, str]:
        env = {k: v for k, v in self.env.items() if not k.startswith("CNI_")}
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=self.container_id,
            CNI_NETNS=self.netns,
            CNI_IFNAME=self.ifname,
            CNI_ARGS=self.args,
            CNI_PATH=":".join(self.path),
        )
        return env


def _delegate_error(plugin_type: str, command: str, rc: int, out: bytes) -> DelegateError:
    try:
        err = loads(out)
    except ValueError:
        err = None
    code = err.get("code") if isinstance(err, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and "msg" in err:
        details = str(err.get("details", ""))
        if code == INTERNAL_ERROR:
            # libcni's "internal error" (Go plugins answer it for most failures, a bad
            # config included): reported as a delegate failure, so that 999 keeps
            # meaning a bug in multinet itself.
            code = DELEGATE_FAILED
            details = "; ".join(d for d in (details, "the plugin answered code 999") if d)
        return DelegateError(f"{plugin_type} {command} failed: {err['msg']}", details, code=code)
    text = out.decode(errors="replace").strip()[:500]
    return DelegateError(
        f"{plugin_type} {command} failed with exit status {rc}",
        f"output is not a CNI error: {text!r}" if text else "no output",
    )


def _observe(inv: Invocation, plugin_type: str, command: str, started: float, ok: bool) -> None:
    if inv.observer is not None:
        inv.observer(plugin_type, command, time.monotonic() - started, ok)


def _exchange(proc: subprocess.Popen[bytes], data: bytes, deadline: float) -> bytes:
    """Write stdin and read stdout to EOF, never past the deadline."""
    assert proc.stdin is not None and proc.stdout is not None
    chunks, pos = [], 0
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if data:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            for key, _ in sel.select(remaining):
                if key.fileobj is proc.stdin:
                    try:  # a writable pipe takes PIPE_BUF bytes without blocking
                        pos += os.write(key.fd, data[pos : pos + select.PIPE_BUF])
                    except BrokenPipeError:
                        pos = len(data)  # the plugin stopped reading: its exit tells
                    if pos >= len(data):
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                else:
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        chunks.append(chunk)
                    else:
                        sel.unregister(proc.stdout)
    return b"".join(chunks)


def _reap(proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait for the exit with a pidfd: Popen.wait(timeout) polls with sleeps (1, 2, 4 ms...),
    which a plugin that exits just after closing stdout pays on every call."""
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:  # kernels before 5.3
        proc.wait(max(deadline - time.monotonic(), 0))
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(deadline - time.monotonic(), 0) * 1000):
            raise subprocess.TimeoutExpired(proc.args, 0)
    finally:
        os.close(fd)
    proc.wait()


CHROOT = "chroot"  # coreutils' chroot(8): it execs the plugin, which keeps its pid


def _run(
    path: str, data: bytes, env: Mapping[str, str], timeout: float, root: str = ""
) -> subprocess.CompletedProcess[bytes]:
    """subprocess.run, but the plugin leads its own process group and a timeout kills the
    whole group: a hung plugin's children would otherwise live on, holding our stderr.
    With `root`, the plugin runs chrooted into it (chroot(8), not a preexec_fn: the daemon
    is threaded)."""
    deadline = time.monotonic() + timeout
    argv = [shutil.which(CHROOT) or f"/usr/sbin/{CHROOT}", root, path] if root else [path]
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, process_group=0
    ) as proc:
        try:
            out = _exchange(proc, data, deadline)
            _reap(proc, deadline)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise subprocess.TimeoutExpired([path], timeout) from None
    return subprocess.CompletedProcess([path], proc.returncode, out)


def invoke(
    plugin_type: str, command: str, config: Mapping[str, Any], inv: Invocation
) -> dict[str, Any] | None:
    """Run one delegate; returns its parsed stdout (None when it printed nothing, or when
    a command other than ADD printed something that is not a JSON object)."""
    path = find_plugin(plugin_type, inv.path, inv.root)
    started = time.monotonic()
    try:
        proc = _run(path, json.dumps(config).encode(), inv.environ(command), inv.timeout, inv.root)
    except subprocess.TimeoutExpired:
        _observe(inv, plugin_type, command, started, ok=False)
        raise DelegateTimedOut(
            f"{plugin_type} {command} timed out after {inv.timeout:g}s"
        ) from None
    except OSError as e:
        raise IOFailure(f"{plugin_type} {command} could not be run", str(e)) from None
    _observe(inv, plugin_type, command, started, ok=proc.returncode == 0)
    if proc.returncode != 0:
        raise _delegate_error(plugin_type, command, proc.returncode, proc.stdout)
    if not proc.stdout.strip():
        return None
    try:
        out = loads(proc.stdout)
    except ValueError as e:
        if command != "ADD":  # like libcni: only ADD's output means anything on success
            return None
        raise DelegateError(
            f"{plugin_type} {command} printed invalid JSON",
            f"{e}: {proc.stdout.decode(errors='replace')[:500]}",
        ) from None
    if not isinstance(out, dict):
        if command != "ADD":
            return None
        raise DelegateError(f"{plugin_type} {command} printed {type(out).__name__}, not an object")
    return out
