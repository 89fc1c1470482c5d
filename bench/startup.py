"""The shim's own start-up: a VERSION call forwarded to multinetd, next to the bare
interpreter started three ways, the pip console script and thin multinet.

VERSION costs the daemon nothing, so the shim's row is its start-up plus one round
trip on the socket: the fixed price of every thick-mode CNI call. All rows are run
interleaved, `max(iterations, MIN_SAMPLES)` times each; wall time and CPU time
(user + system of the child) are recorded. `-X importtime` then lists what the
shim imports beyond what the interpreter imports anyway.
"""

from __future__ import annotations

import json
import os
import resource
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

MIN_SAMPLES = 3
TARGET_MS = 25.0
SHIM_ROW = "multinet-shim VERSION: launcher -> multinetd"


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]
    stdin: bytes = b""
    forwarded: bool = False  # must reach the daemon (no in-process fallback)


def commands(scenario: Scenario, socket: str) -> list[Command]:
    py = scenario.python
    up = json.dumps({"cniVersion": CNI_VERSION, "daemonSocketPath": socket}).encode()
    down = json.dumps(
        {"cniVersion": CNI_VERSION, "daemonSocketPath": str(scenario.root / "no-daemon.sock")}
    ).encode()
    console = Path(py).parent / "multinet-shim"
    shim = str(scenario.shim())
    return [
        Command("python3 -c pass", [py, "-c", "pass"]),
        Command("python3 -S -c pass", [py, "-S", "-c", "pass"]),
        Command("python3 -I -S -c pass (the launcher's flags)", [py, "-I", "-S", "-c", "pass"]),
        Command(SHIM_ROW, [shim], up, forwarded=True),
        Command(
            "multinet-shim VERSION: pip console script -> multinetd",
            [str(console)],
            up,
            forwarded=True,
        ),
        Command("multinet-shim VERSION: daemon down (in-process)", [shim], down),
        Command("multinet VERSION (thin, in-process)", [str(scenario.thin())], up),
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env["CNI_COMMAND"] = "VERSION"
    return env


def run_once(cmd: Command) -> tuple[float, float]:
    """(wall, CPU) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd.argv, input=cmd.stdin, env=_env(), capture_output=True, timeout=60)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or (cmd.forwarded and FALLBACK_MARK.encode() in proc.stderr):
        raise BenchError(f"{cmd.label}: exit {proc.returncode}: {proc.stdout!r} {proc.stderr!r}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def importtime(argv: list[str], stdin: bytes) -> dict[str, tuple[int, int]]:
    """{module: (self us, cumulative us)} from `python -X importtime`."""
    proc = subprocess.run(argv, input=stdin, env=_env(), capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise BenchError(f"{argv}: exit {proc.returncode}: {proc.stderr[-500:]!r}")
    out = {}
    for line in proc.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = (p.strip() for p in line[len("import time:") :].split("|"))
        out[name] = (int(self_us), int(cumulative))
    return out


def import_summary(scenario: Scenario, socket: str, runs: int = 5) -> dict[str, Any]:
    """What each start-up imports beyond `python -I -S -c pass`: per-module median self
    times over `runs` runs of `-X importtime`."""
    py = scenario.python
    up = json.dumps({"cniVersion": CNI_VERSION, "daemonSocketPath": socket}).encode()
    cases = {
        "python3 -I -S -c pass": [py, "-X", "importtime", "-I", "-S", "-c", "pass"],
        "multinet-shim launcher": [py, "-X", "importtime", "-I", "-S", str(scenario.shim())],
        "pip console script": [py, "-X", "importtime", str(Path(py).parent / "multinet-shim")],
    }
    seen = {label: [importtime(argv, up) for _ in range(runs)] for label, argv in cases.items()}
    base = set(seen["python3 -I -S -c pass"][0])
    summary: dict[str, Any] = {}
    for label, samples in seen.items():
        modules = set(samples[0])
        extra = sorted(modules - base)
        # Per-module medians over the runs: one run on a busy machine is noise.
        self_ms = {m: statistics.median(t[m][0] for t in samples if m in t) / 1000 for m in modules}
        summary[label] = {
            "modules": len(modules),
            "import_ms": round(sum(self_ms.values()), 2),
            "modules_beyond_bare_interpreter": len(extra),
            "their_import_ms": round(sum(self_ms[m] for m in extra), 2),
            "top_beyond_bare_interpreter": [
                [m, round(self_ms[m], 2)] for m in sorted(extra, key=lambda m: -self_ms[m])[:8]
            ],
        }
    return summary


def run(scenario: Scenario, iterations: int, progress: Callable[[str], None] = print) -> Any:
    samples = max(iterations, MIN_SAMPLES)
    daemon = scenario.daemon("startup", {"cniDir": str(scenario.cni_dir("startup"))})
    cmds = commands(scenario, daemon.socket)
    for cmd in cmds:  # once each, unrecorded: page cache, bytecode
        run_once(cmd)
    wall: dict[str, list[float]] = {c.label: [] for c in cmds}
    cpu: dict[str, list[float]] = {c.label: [] for c in cmds}
    for _ in range(samples):
        for cmd in cmds:
            w, c = run_once(cmd)
            wall[cmd.label].append(w)
            cpu[cmd.label].append(c)
    progress(f"  startup: {samples} interleaved samples of {len(cmds)} commands")
    rows = {
        label: {**summarize(wall[label]).to_dict(), "cpu_median": summarize(cpu[label]).median}
        for label in wall
    }
    for row in rows.values():
        row["cpu_median"] = round(row["cpu_median"], 2)
    shim = rows[SHIM_ROW]
    bare = rows["python3 -I -S -c pass (the launcher's flags)"]
    return {
        "samples": samples,
        "rows": rows,
        "shim_median_ms": shim["median"],
        "shim_over_bare_interpreter_ms": round(shim["median"] - bare["median"], 2),
        "target_ms": TARGET_MS,
        "verdict": verdict(shim["median"], TARGET_MS),
        "imports": import_summary(scenario, daemon.socket),
    }


def render(r: dict[str, Any]) -> str:
    rows = [
        [
            label,
            f"{s['min']:.1f}",
            f"{s['median']:.1f}",
            f"{s['max']:.1f}",
            f"{s['cpu_median']:.1f}",
        ]
        for label, s in r["rows"].items()
    ]
    out = [
        table(
            ["start-up (ms)", "min", "median", "max", "CPU median"],
            rows,
            f"Start-up, n = {r['samples']} interleaved samples each",
        ),
        f"shim: median {r['shim_median_ms']:.1f} ms, "
        f"{r['shim_over_bare_interpreter_ms']:+.1f} ms over `python3 -I -S -c pass`; "
        f"target < {r['target_ms']:.0f} ms: {r['verdict']}",
    ]
    rows = [
        [
            label,
            str(s["modules"]),
            f"{s['import_ms']:.1f}",
            str(s["modules_beyond_bare_interpreter"]),
            f"{s['their_import_ms']:.1f}",
            ", ".join(m for m, _ in s["top_beyond_bare_interpreter"][:5]) or "-",
        ]
        for label, s in r["imports"].items()
    ]
    out.append(
        table(
            ["python -X importtime", "modules", "import ms", "extra", "extra ms", "largest extras"],
            rows,
            "Imports (extra = beyond those of `python3 -I -S -c pass`)",
        )
    )
    return "\n\n".join(out)
