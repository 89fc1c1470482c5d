"""`python -m bench.nativeshim`: the native multinet-shim's own start-up + forward.

One VERSION round trip against a minimal fake daemon that answers at once (a
thread on a unix socket, canned answer), timed from spawn to exit, median of N
runs, for:

- the floor: `/bin/true` (spawn + exec + wait, no work), and a tiny Rust client
  that only connects, sends the same request and reads the answer to the end;
- the native shim (the `multinet-shim` that pip built into the scripts directory);
- the Python shim as the host launcher runs it (`python3 -IS`, multinet on
  sys.path by hand since -S skips site-packages).

Standalone: no other bench module, no root, nothing left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ANSWER_STDOUT = '{"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]}'
CLIENT_RS = r"""
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).unwrap();
    let mut s = UnixStream::connect(path).unwrap();
    let head = format!(
        "POST /v1/cni HTTP/1.1\r\nHost: multinetd\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        input.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&input).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    std::io::stdout().write_all(&answer).unwrap();
}
"""


class FakeDaemon:
    """Answers every request with a canned VERSION answer, as soon as it is read."""

    def __init__(self, path: str) -> None:
        body = json.dumps({"code": 0, "stdout": ANSWER_STDOUT}).encode()
        self.answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()


def spawn_once(argv: Sequence[str], stdin: bytes, env: dict[str, str]) -> float:
    """Seconds from posix_spawn to exit; stdin from a pipe filled before the spawn."""
    r, w = os.pipe()
    os.write(w, stdin)  # small: fits in the pipe buffer
    os.close(w)
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, r, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], list(argv), env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    took = time.perf_counter() - start
    os.close(r)
    os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[0]} exited {os.waitstatus_to_exitcode(status)}")
    return took


def check_output(argv: Sequence[str], stdin: bytes, env: dict[str, str]) -> bytes:
    result = subprocess.run(list(argv), input=stdin, env=env, capture_output=True, check=True)
    if result.stderr:
        raise RuntimeError(f"{argv[0]}: {result.stderr.decode(errors='replace')}")
    return result.stdout


def build_client(tmp: Path) -> str | None:
    rustc = shutil.which("rustc")
    if rustc is None:
        return None
    src = tmp / "client.rs"
    src.write_text(CLIENT_RS)
    out = tmp / "client"
    subprocess.run([rustc, "-O", "-o", str(out), str(src)], check=True, capture_output=True)
    return str(out)


def native_shim() -> str:
    path = Path(sysconfig.get_path("scripts")) / "multinet-shim"
    if not path.is_file() or path.read_bytes()[:4] != b"\x7fELF":
        raise SystemExit(f"{path}: not the native shim (pip install -e '.[dev]' builds it)")
    return str(path)


def python_shim() -> list[str]:
    import multinet

    root = str(Path(multinet.__file__).resolve().parent.parent)
    code = f"import sys; sys.path.insert(0, {root!r}); from multinet.shim import main; main()"
    return [sys.executable, "-IS", "-c", code]


def measure(runs: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory(prefix="mnbench-", dir="/tmp") as tmp:
        sock = os.path.join(tmp, "d.sock")
        daemon = FakeDaemon(sock)
        try:
            stdin = json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "n",
                    "type": "multinet-shim",
                    "daemonSocketPath": sock,
                }
            ).encode()
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": "VERSION"}
            rows: list[tuple[str, list[str]]] = [("floor: /bin/true", ["/bin/true"])]
            client = build_client(Path(tmp))
            if client:
                rows.append(("floor: tiny Rust client (connect, send, read)", [client, sock]))
            rows.append(("native multinet-shim VERSION", [native_shim()]))
            rows.append(("Python shim VERSION (python3 -IS)", python_shim()))
            for name, argv in rows[1:]:
                out = check_output(argv, stdin, env)
                if b"supportedVersions" not in out:
                    raise RuntimeError(f"{name}: unexpected answer {out[:200]!r}")
            results = []
            for name, argv in rows:
                for _ in range(5):  # warm the page cache
                    spawn_once(argv, stdin, env)
                samples = sorted(spawn_once(argv, stdin, env) for _ in range(runs))
                p90 = samples[int(len(samples) * 0.9) - 1]
                results.append((name, statistics.median(samples) * 1e3, p90 * 1e3))
            return results
        finally:
            daemon.close()


def render(results: list[tuple[str, float, float]], runs: int) -> str:
    width = max(len(r[0]) for r in results)
    lines = [f"{'spawn to exit, ' + str(runs) + ' runs':<{width}}  median ms     p90 ms"]
    for name, median, p90 in results:
        lines.append(f"{name:<{width}}  {median:9.3f}  {p90:9.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.nativeshim", description=__doc__)
    p.add_argument("--runs", type=int, default=200, help="samples per row (default 200)")
    args = p.parse_args(argv)
    print(render(measure(args.runs), args.runs))


if __name__ == "__main__":
    main()
