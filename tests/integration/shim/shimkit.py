"""Helpers for the native ``multinet-shim`` tests: fake daemons on unix sockets, a
recording stand-in for the thin ``multinet``, the real ``multinetd``, and the
request and answer formats. The fixtures that use them are in conftest.py.

Self-contained: nothing here imports other test folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

RECORDED_STDOUT = '{"cniVersion": "1.0.0", "recorded": "é"}\n'.encode()
RECORDED_CODE = 3
CNI_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
HEAD = (
    "POST /v1/cni HTTP/1.1\r\nHost: multinetd\r\nContent-Type: application/json\r\n"
    "Content-Length: {}\r\nConnection: close\r\n\r\n"
)


def base_env(command: str = "VERSION", **extra: str) -> dict[str, str]:
    """A small, fixed environment (LC_ALL set: no locale coercion in the recorder)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": "/var/run/netns/none",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/usr/lib/cni",
    }
    env.update(extra)
    return env


def run(
    argv: Sequence[str | Path],
    stdin: bytes,
    env: Mapping[str, str],
    timeout: float = 30,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(a) for a in argv],
        input=stdin,
        env=dict(env),
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def netconf(**keys: object) -> bytes:
    """A shim netconf. `daemonSocketWait` is 0 unless given (None: the key left out, the
    shim's default): a test about anything else falls back at once when no daemon serves."""
    conf = {"cniVersion": "1.0.0", "name": "n", "type": "multinet-shim", "daemonSocketWait": 0}
    conf.update(keys)
    return json.dumps({k: v for k, v in conf.items() if v is not None}).encode()


def http_answer(body: bytes, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def read_request(conn: socket.socket) -> bytes:
    """One request: its head, then Content-Length bytes of body."""
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    chunks = [body]
    size = len(body)
    while size < length:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return head + b"\r\n\r\n" + b"".join(chunks)


Answer = Callable[[socket.socket, bytes], None]


class FakeDaemon:
    """A unix socket server in a thread; `answer` decides what each client gets.

    With ``accept=False`` it listens with a backlog of 0 that is already full,
    so a connect waits until its timeout.
    """

    def __init__(self, path: Path, answer: Answer, accept: bool = True) -> None:
        self.path = path
        self.answer = answer
        self.requests: list[bytes] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._fillers: list[socket.socket] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        if accept:
            self.sock.listen(16)
            self.sock.settimeout(0.1)
            self._thread: threading.Thread | None = threading.Thread(target=self._serve)
            self._thread.start()
        else:
            self.sock.listen(0)
            self._thread = None
            self._fill_backlog()

    def _fill_backlog(self) -> None:
        for _ in range(8):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            self._fillers.append(c)
            try:
                c.connect(str(self.path))
            except BlockingIOError:
                return
        raise AssertionError("the listen backlog did not fill up")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = read_request(conn)
                self.requests.append(request)
                self.answer(conn, request)
            except OSError as e:  # the shim gave up first: expected for slow answers
                self.errors.append(e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()
        for c in self._fillers:
            c.close()


class Recorder:
    """A stand-in for the thin ``multinet``: records what it was run with."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.out = path.parent / f"{path.name}.record"
        self.out.mkdir(parents=True)
        path.write_text(
            f"#!{sys.executable} -I\n"
            "import json, os, sys\n"
            f"out = {str(self.out)!r}\n"
            "with open(out + '/stdin', 'wb') as f:\n"
            "    f.write(sys.stdin.buffer.read())\n"
            "with open(out + '/argv', 'w') as f:\n"
            "    json.dump([os.fsencode(a).hex() for a in sys.argv], f)\n"
            "with open(out + '/env', 'w') as f:\n"
            "    json.dump([[k.hex(), v.hex()] for k, v in os.environb.items()], f)\n"
            f"sys.stdout.buffer.write({RECORDED_STDOUT!r})\n"
            f"sys.exit({RECORDED_CODE})\n"
        )
        path.chmod(0o755)

    def ran(self) -> bool:
        return (self.out / "env").exists()

    def stdin(self) -> bytes:
        return (self.out / "stdin").read_bytes()

    def argv(self) -> list[bytes]:
        return [bytes.fromhex(a) for a in json.loads((self.out / "argv").read_text())]

    def env(self) -> dict[bytes, bytes]:
        pairs = json.loads((self.out / "env").read_text())
        return {bytes.fromhex(k): bytes.fromhex(v) for k, v in pairs}


def fsenv(env: Mapping[str, str]) -> dict[bytes, bytes]:
    return {os.fsencode(k): os.fsencode(v) for k, v in env.items()}


def assert_fell_back(
    result: subprocess.CompletedProcess[bytes], recorder: Recorder, command: str = "VERSION"
) -> None:
    err = result.stderr.decode(errors="replace")
    assert f"running {command} in-process" in err, err
    assert err.startswith("multinet-shim: daemon unavailable ("), err
    assert recorder.ran(), err
    assert result.returncode == RECORDED_CODE, err
    assert result.stdout == RECORDED_STDOUT


class Daemon:
    """The real multinetd, on its own socket and state directory."""

    def __init__(self, workdir: Path) -> None:
        self.socket = str(workdir / "d.sock")
        self.state = workdir / "state"
        config = workdir / "multinetd.json"
        config.write_text(
            json.dumps(
                {
                    "daemonSocketPath": self.socket,
                    "generateConfig": False,
                    "cniDir": str(self.state),
                    "binDir": "/usr/lib/cni",
                }
            )
        )
        beside = Path(sys.executable).parent / "multinetd"  # the venv's, active or not
        exe = str(beside) if beside.is_file() else shutil.which("multinetd")
        assert exe, "the multinetd console script is not installed (make deps)"
        self.log = workdir / "multinetd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([exe, "--config", str(config)], stdout=log, stderr=log)
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"multinetd exited: {self.log.read_text()}")
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
            time.sleep(0.05)
        raise AssertionError(f"multinetd did not become healthy: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
