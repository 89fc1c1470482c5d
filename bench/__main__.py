"""`python -m bench`: run the benchmarks of issue 4, print tables, optionally write JSON.

Everything runs in one `Scenario`, removed at the end — also after a failure,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from bench import burst, concurrency, dynamic, engine, latency, memory, startup
from bench.daemon import BenchError
from bench.scenario import REFERENCE_PLUGINS, Scenario, require_environment

MEASUREMENTS: dict[str, tuple[Callable[..., Any], Callable[[Any], str]]] = {
    "startup": (startup.run, startup.render),
    "latency": (latency.run, latency.render),
    "concurrency": (concurrency.run, concurrency.render),
    "memory": (memory.run, memory.render),
    "engine": (engine.run, engine.render),
    "dynamic": (dynamic.run, dynamic.render),
    "burst": (burst.run, burst.render),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--iterations",
        type=int,
        default=30,
        help="rounds of the latency comparison and of the start-up rows (at least "
        f"{startup.MIN_SAMPLES}; the ~1 ms rows run {startup.FAST_REPEAT} times per round) "
        "(default 30)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=list(MEASUREMENTS),
        metavar="NAME",
        help=f"run only this measurement (repeatable): {', '.join(MEASUREMENTS)}",
    )
    p.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    p.add_argument(
        "--pods",
        type=int,
        help=f"concurrent pods (default: concurrency {concurrency.PODS}, burst {burst.PODS})",
    )
    p.add_argument(
        "--limit",
        type=float,
        metavar="MIB",
        help="burst: the daemon's cgroup memory limit in MiB, 0 for none (default: the thick "
        "DaemonSet's resources.limits.memory)",
    )
    p.add_argument(
        "--cycles", type=int, default=memory.CYCLES, help="memory: ADD/DEL cycles (default 1000)"
    )
    p.add_argument(
        "--nads", type=int, default=memory.NADS, help="memory: NADs cached (default 1000)"
    )
    p.add_argument(
        "--cached-pods",
        type=int,
        default=memory.PODS,
        help=f"memory: pods of the daemon's node cached (default {memory.PODS})",
    )
    return p


def machine() -> dict[str, Any]:
    plugins = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "containernetworking-plugins"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "reference_plugins": f"{REFERENCE_PLUGINS} {plugins.stdout.strip() or 'unknown'}",
    }


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (
        args.iterations < 1
        or (args.pods is not None and args.pods < 1)
        or (args.limit is not None and args.limit < 0)
        or args.cycles < 1
        or args.nads < 0
        or args.cached_pods < 1
    ):
        print(
            "iterations, pods, cycles and cached pods must be >= 1, nads and limit >= 0",
            file=sys.stderr,
        )
        return 2
    selected = [name for name in MEASUREMENTS if not args.only or name in args.only]
    options = {
        "concurrency": {"pods": args.pods or concurrency.PODS},
        "burst": {"pods": args.pods or burst.PODS, "limit_mib": args.limit},
        "memory": {"cycles": args.cycles, "nads": args.nads, "cached_pods": args.cached_pods},
    }
    results: dict[str, Any] = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
    }
    signal.signal(signal.SIGTERM, _terminate)
    code = 0
    scenario: Scenario | None = None
    try:
        require_environment()
        scenario = Scenario()
        for name in selected:
            measure, render = MEASUREMENTS[name]
            print(f"== {name}", flush=True)
            started = time.monotonic()
            result = measure(
                scenario,
                iterations=args.iterations,
                progress=lambda line: print(line, flush=True),
                **options.get(name, {}),
            )
            result["seconds"] = round(time.monotonic() - started, 1)
            results[name] = result
            print(render(result), flush=True)
            print(flush=True)
            failed = [k for k, v in result.items() if isinstance(v, dict) and v.get("ok") is False]
            if failed:
                print(f"bench: {name}: {', '.join(failed)} FAILED (see above)", file=sys.stderr)
                code = 1
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        code = 130
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        code = 1
    finally:
        if scenario is not None:
            scenario.close()
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        print(f"results written to {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
