"""Find a delegate plugin by `type` and run it with the CNI protocol."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Callable, Mapping, Sequence

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
from multinet.record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


@record(frozen=True)
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


class Finished:
    """A plugin run to its end: its exit status (minus the signal that killed it) and stdout.
    A plain class: a dataclass costs ~0.5 ms to create, paid by every thin-mode call."""

    __slots__ = ("returncode", "stdout")

    def __init__(self, returncode: int, stdout: bytes) -> None:
        self.returncode, self.stdout = returncode, stdout


class Timeout(Exception):
    """The plugin did not finish before its deadline (it was killed, with its group)."""


def _inherited_fds() -> list[int]:
    """The descriptors above stderr a child would inherit. Python opens everything
    close-on-exec (PEP 446), so this is normally empty; what a library marked
    inheritable is closed in the child, as subprocess's close_fds would."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own descriptor, gone
                if os.get_inheritable(fd):
                    fds.append(fd)
    return fds


def _spawn(argv: Sequence[str], env: Mapping[str, str], stdin: int, stdout: int) -> int:
    """posix_spawn (vfork + exec: no copy of a large parent's page tables, unlike fork),
    stdin and stdout on the pipes, stderr inherited, in a process group of its own,
    with the signals Python ignores back at their defaults (as subprocess does)."""
    actions: list[tuple[int, ...]] = [
        (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
    ]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds() if fd not in (stdin, stdout)]
    return os.posix_spawn(
        argv[0],
        list(argv),
        dict(env),
        file_actions=actions,
        setpgroup=0,
        setsigmask=(),
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
    )


def _exchange(stdin: int, stdout: int, data: bytes, deadline: float) -> bytes:
    """Write stdin and read stdout to EOF, never past the deadline; closes both fds."""
    chunks, pos = [], 0
    poller = select.poll()
    poller.register(stdout, select.POLLIN)
    open_fds = {stdout}
    if data:
        poller.register(stdin, select.POLLOUT)
        open_fds.add(stdin)
    else:
        os.close(stdin)
    try:
        while open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout
            for fd, _ in poller.poll(remaining * 1000):
                if fd == stdin:
                    try:  # a writable pipe takes PIPE_BUF bytes without blocking
                        pos += os.write(fd, data[pos : pos + select.PIPE_BUF])
                    except BrokenPipeError:
                        pos = len(data)  # the plugin stopped reading: its exit tells
                    if pos >= len(data):
                        poller.unregister(fd)
                        open_fds.discard(fd)
                        os.close(fd)
                else:
                    chunk = os.read(fd, 65536)
                    if chunk:
                        chunks.append(chunk)
                    else:
                        poller.unregister(fd)
                        open_fds.discard(fd)
    finally:
        for fd in open_fds | {stdout}:
            with contextlib.suppress(OSError):
                os.close(fd)
    return b"".join(chunks)


def _reap(pid: int, deadline: float) -> int:
    """Wait for the exit, never past the deadline (a pidfd: no polling with sleeps);
    the exit status as subprocess reports it (minus the signal that killed it)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # kernels before 5.3: look every millisecond
        while not (reaped := os.waitpid(pid, os.WNOHANG))[0]:
            if time.monotonic() >= deadline:
                raise Timeout from None
            time.sleep(0.001)
        return os.waitstatus_to_exitcode(reaped[1])
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(deadline - time.monotonic(), 0) * 1000):
            raise Timeout
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


CHROOT = "chroot"  # coreutils' chroot(8): it execs the plugin, which keeps its pid


def _run(
    path: str, data: bytes, env: Mapping[str, str], timeout: float, root: str = ""
) -> Finished:
    """Run the plugin to its end. It leads its own process group and a timeout kills the
    whole group: a hung plugin's children would otherwise live on, holding our stderr.
    With `root`, the plugin runs chrooted into it (chroot(8): the daemon is threaded)."""
    deadline = time.monotonic() + timeout
    argv = [path]
    if root:
        import shutil  # only a hostRoot pays

        argv = [shutil.which(CHROOT) or f"/usr/sbin/{CHROOT}", root, path]
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    try:
        pid = _spawn(argv, env, stdin_r, stdout_w)
    except BaseException:
        for fd in (stdin_r, stdin_w, stdout_r, stdout_w):
            os.close(fd)
        raise
    os.close(stdin_r)
    os.close(stdout_w)
    try:
        out = _exchange(stdin_w, stdout_r, data, deadline)
        code = _reap(pid, deadline)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    return Finished(code, out)


def invoke(
    plugin_type: str, command: str, config: Mapping[str, Any], inv: Invocation
) -> dict[str, Any] | None:
    """Run one delegate; returns its parsed stdout (None when it printed nothing, or when
    a command other than ADD printed something that is not a JSON object)."""
    path = find_plugin(plugin_type, inv.path, inv.root)
    started = time.monotonic()
    try:
        proc = _run(path, json.dumps(config).encode(), inv.environ(command), inv.timeout, inv.root)
    except Timeout:
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
