"""Start-up: the native shim's own start-up + forward, against floors measured in the same run.

Every row is one process, timed from `posix_spawn` to `wait4` (which also gives its
CPU time, user + system), with the same small environment (`PATH`, and
`CNI_COMMAND=VERSION`) and a VERSION netconf on stdin:

- the floors: `/bin/true` (spawn, exec, exit: what any CNI executable pays), and a
  tiny Rust client (built here with `rustc -O`) that only connects to the daemon's
  socket, sends the very request the shim would send and reads the answer to the
  end: the same exchange with the same daemon, without the shim's own work;
- `multinet-shim` VERSION -> multinetd: the native shim as `multinetctl
  install-shim` installs it, against a running daemon. VERSION costs the daemon
  nothing, so this is the fixed price of every thick-mode CNI call (issue 11: at
  most 2 ms);
- the fallback: the same shim with no daemon behind its socket, which execs the
  thin `multinet` installed beside it;
- thin `multinet` VERSION, and its floor, the interpreter alone (`python3 -IS -c
  pass`, the launcher's flags).

Rows are interleaved round by round, so that the noise of a shared machine falls on
all of them alike; the fast rows run `FAST_REPEAT` times per round. Every forwarded
run must reach the daemon (the shim's stderr has no fallback line), every fallback
run must not.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.daemon import BenchError
from bench.networks import CNI_VERSION
from bench.report import summarize, table, verdict
from bench.scenario import FALLBACK_MARK, Scenario
from multinet.shim import protocol

MIN_SAMPLES = 3
FAST_REPEAT = 10  # runs per round of the rows that take about a millisecond
TARGET_MS = 2.0  # issue 11: the native shim's start-up and forward, median

TRUE = "true"
CLIENT = "client"
SHIM = "shim"
FALLBACK = "fallback"
PYTHON = "python"
THIN = "thin"
LABELS = {
    TRUE: "/bin/true (spawn, exec, wait: floor)",
    CLIENT: "tiny Rust client -> multinetd (connect, send, read: floor)",
    SHIM: "multinet-shim VERSION -> multinetd",
    FALLBACK: "multinet-shim VERSION, daemon down -> exec thin multinet",
    PYTHON: "python3 -IS -c pass (thin's floor: its launcher)",
    THIN: "multinet VERSION (thin, in-process)",
}

CLIENT_RS = r"""
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).unwrap();
    let mut s = UnixStream::connect(path).unwrap();
    let head = format!(
        "POST /v1/cni HTTP/1.1\r\nHost: multinetd\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    std::io::stdout().write_all(&answer).unwrap();
}
"""


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]
    stdin: bytes
    repeat: int = 1
    forwarded: bool = False  # must reach the daemon
    falls_back: bool = False  # must not

    @property
    def label(self) -> str:
        return LABELS[self.name]


def build_client(workdir: Path) -> str | None:
    """The floor client, or None without rustc."""
    rustc = shutil.which("rustc")
    if rustc is None:
        return None
    src, out = workdir / "floor-client.rs", workdir / "floor-client"
    src.write_text(CLIENT_RS)
    proc = subprocess.run([rustc, "-O", "-o", str(out), str(src)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"rustc could not build the floor client:\n{proc.stderr}")
    return str(out)


def environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": "VERSION"}


def commands(scenario: Scenario, socket: str) -> list[Command]:
    up = json.dumps({"cniVersion": CNI_VERSION, "daemonSocketPath": socket}).encode()
    down = json.dumps(
        {"cniVersion": CNI_VERSION, "daemonSocketPath": str(scenario.root / "no-daemon.sock")}
    ).encode()
    shim = str(scenario.shim())
    cmds = [Command(TRUE, ["/bin/true"], b"", FAST_REPEAT)]
    client = build_client(scenario.root)
    if client is not None:
        body = protocol.encode_request(environment(), up)
        cmds.append(Command(CLIENT, [client, socket], body, FAST_REPEAT))
    return [
        *cmds,
        Command(SHIM, [shim], up, FAST_REPEAT, forwarded=True),
        Command(FALLBACK, [shim], down, falls_back=True),
        Command(PYTHON, [scenario.python, "-IS", "-c", "pass"], b""),
        Command(THIN, [str(scenario.thin())], up),
    ]


def check(cmd: Command) -> None:
    """One run with its output read: the answer is VERSION's, the path the expected one."""
    proc = subprocess.run(cmd.argv, input=cmd.stdin, env=environment(), capture_output=True)
    fell_back = FALLBACK_MARK.encode() in proc.stderr
    answered = cmd.name in (TRUE, PYTHON) or b"supportedVersions" in proc.stdout
    if proc.returncode != 0 or not answered or fell_back != cmd.falls_back:
        raise BenchError(
            f"{cmd.label}: exit {proc.returncode}, stdout {proc.stdout[:300]!r}, "
            f"stderr {proc.stderr[:300]!r}"
        )


def spawn_once(cmd: Command, stderr_fd: int) -> tuple[float, float]:
    """(wall, CPU) seconds from posix_spawn to wait4; stdin from a pipe filled first."""
    r, w = os.pipe()
    os.write(w, cmd.stdin)  # small: fits in the pipe buffer
    os.close(w)
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [
        (os.POSIX_SPAWN_DUP2, r, 0),
        (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
    ]
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(cmd.argv[0], cmd.argv, environment(), file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
    finally:
        os.close(r)
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise BenchError(f"{cmd.label}: exit {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime


def run(scenario: Scenario, iterations: int, progress: Callable[[str], None] = print) -> Any:
    rounds = max(iterations, MIN_SAMPLES)
    daemon = scenario.daemon("startup", {"cniDir": str(scenario.cni_dir("startup"))})
    cmds = commands(scenario, daemon.socket)
    for cmd in cmds:  # checked once each, unrecorded: page cache, bytecode
        check(cmd)
    wall: dict[str, list[float]] = {c.name: [] for c in cmds}
    cpu: dict[str, list[float]] = {c.name: [] for c in cmds}
    logs = {c.name: scenario.root / f"startup-{c.name}.stderr" for c in cmds}
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    fds = {name: os.open(path, flags) for name, path in logs.items()}
    try:
        for _ in range(rounds):
            for cmd in cmds:
                for _ in range(cmd.repeat):
                    w, c = spawn_once(cmd, fds[cmd.name])
                    wall[cmd.name].append(w)
                    cpu[cmd.name].append(c)
    finally:
        for fd in fds.values():
            os.close(fd)
    for cmd in cmds:
        marks = logs[cmd.name].read_bytes().count(FALLBACK_MARK.encode())
        if cmd.forwarded and marks:
            raise BenchError(f"{cmd.label}: {marks} of its runs did not reach the daemon")
        if cmd.falls_back and marks != len(wall[cmd.name]):
            raise BenchError(f"{cmd.label}: {marks} fallbacks in {len(wall[cmd.name])} runs")
    progress(f"  startup: {rounds} interleaved rounds of {len(cmds)} commands")
    return results(wall, cpu, rounds)


def _p90(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000


def results(wall: dict[str, list[float]], cpu: dict[str, list[float]], rounds: int) -> Any:
    rows = {
        name: {
            **summarize(wall[name]).to_dict(),
            "p90": round(_p90(wall[name]), 2),
            "cpu_median": round(statistics.median(cpu[name]) * 1000, 2),
        }
        for name in wall
    }

    def median(name: str) -> float:
        return float(rows[name]["median"])

    def over(name: str, floor: str) -> dict[str, float]:
        return {
            "over_ms": round(median(name) - median(floor), 2),
            "ratio": round(median(name) / median(floor), 2),
        }

    out: dict[str, Any] = {
        "rounds": rounds,
        "labels": {name: LABELS[name] for name in rows},
        "rows": rows,
        "shim": {
            "median_ms": median(SHIM),
            "over_true": over(SHIM, TRUE),
            "target_ms": TARGET_MS,
            "verdict": verdict(median(SHIM), TARGET_MS),
        },
        "fallback": {"median_ms": median(FALLBACK), "over_thin": over(FALLBACK, THIN)},
        "thin": {"median_ms": median(THIN), "over_python": over(THIN, PYTHON)},
    }
    if CLIENT in rows:
        out["shim"]["over_client"] = over(SHIM, CLIENT)
        out["client_over_true"] = over(CLIENT, TRUE)
    return out


def render(r: dict[str, Any]) -> str:
    rows = [
        [
            r["labels"][name],
            str(s["n"]),
            f"{s['min']:.2f}",
            f"{s['median']:.2f}",
            f"{s['p90']:.2f}",
            f"{s['max']:.2f}",
            f"{s['cpu_median']:.2f}",
        ]
        for name, s in r["rows"].items()
    ]
    shim = r["shim"]
    lines = [
        table(
            ["start-up (ms)", "n", "min", "median", "p90", "max", "CPU median"],
            rows,
            f"Start-up, {r['rounds']} interleaved rounds",
        ),
        "",
        f"shim: median {shim['median_ms']:.2f} ms "
        f"(target <= {shim['target_ms']:.0f} ms: {shim['verdict']}); "
        f"{shim['over_true']['over_ms']:+.2f} ms, x{shim['over_true']['ratio']:.2f} over /bin/true",
    ]
    if "over_client" in shim:
        lines[-1] += (
            f"; {shim['over_client']['over_ms']:+.2f} ms, "
            f"x{shim['over_client']['ratio']:.2f} over the tiny client"
        )
    else:
        lines.append("(no rustc: the tiny client's floor was not measured)")
    fb, thin = r["fallback"], r["thin"]
    lines.append(
        f"fallback: {fb['median_ms']:.1f} ms, {fb['over_thin']['over_ms']:+.1f} ms over thin; "
        f"thin: {thin['median_ms']:.1f} ms, {thin['over_python']['over_ms']:+.1f} ms "
        f"(x{thin['over_python']['ratio']:.2f}) over the bare interpreter"
    )
    return "\n".join(lines)
