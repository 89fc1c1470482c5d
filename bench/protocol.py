"""Thick-mode measurements for docs/performance.md (not a test; run as root).

    python -m bench.protocol [-n 40]

Part 1, the shim and the protocol: a VERSION call forwarded to a running
multinetd by the installed launcher, against the bare interpreter, the same
request made with http.client + json + socket, `import grpc` alone, the
console script, and thin multinet. Part 2, ADD and DEL of one bridge +
host-local network: the delegate alone (the floor), thick, thin. Everything it
creates (a daemon, a netns `mnd-*`, a bridge `mndb*`, a /tmp directory) is
removed at the end. Prints Markdown rows: min / median / max wall ms (and the
median CPU ms of part 1, which is less disturbed by other load).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HTTP_CLIENT = r"""
import http.client, json, os, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(SOCK)
stdin = sys.stdin.buffer.read()
c = C("multinetd")
c.request("POST", "/v1/cni", json.dumps({"env": dict(os.environ), "stdin": stdin.decode()}))
a = json.loads(c.getresponse().read())
sys.stdout.write(a["stdout"])
sys.exit(a["code"])
"""


def timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> tuple[float, float]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    wall = (time.perf_counter() - t) * 1000
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {proc.stdout!r} {proc.stderr!r}")
    return wall, (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000


def row(label: str, walls: list[float], cpus: list[float] | None = None) -> str:
    cells = [f"{min(walls):.1f}", f"{statistics.median(walls):.1f}", f"{max(walls):.1f}"]
    if cpus is not None:
        cells.append(f"{statistics.median(cpus):.1f}")
    return f"| {label} | " + " | ".join(cells) + " |"


def shim_startup(n: int, sock: str, launcher: str, py: str) -> None:
    stdin = json.dumps({"cniVersion": "1.0.0", "daemonSocketPath": sock}).encode()
    env = dict(os.environ, CNI_COMMAND="VERSION")
    variants = [
        ("python -IS -c pass (the interpreter alone)", [py, "-IS", "-c", "pass"]),
        ("multinet-shim launcher -> multinetd", [launcher]),
        (
            "same request: http.client + json + socket, -IS",
            [py, "-IS", "-c", f"SOCK={sock!r}\n{HTTP_CLIENT}"],
        ),
        ("python -c 'import grpc' (nothing sent)", [py, "-c", "import grpc"]),
        ("console script (site-packages) -> multinetd", [py, "-m", "multinet.shim.main"]),
        ("thin multinet, in-process", [py, "-m", "multinet.thin.main"]),
    ]
    print("| variant (VERSION) | min | median | max | CPU median |\n|---|---:|---:|---:|---:|")
    for label, argv in variants:
        runs = [timed(argv, stdin, env) for _ in range(n)]
        print(row(label, [w for w, _ in runs], [c for _, c in runs]))


def add_del(n: int, tmp: str, sock: str, launcher: str, py: str) -> None:
    ns, br = f"mnd-{secrets.token_hex(3)}", f"mndb{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", br, "type", "bridge"], check=True)
    try:
        gw = "10.251.0.1"
        plugin: dict[str, Any] = {
            "type": "bridge",
            "bridge": br,
            "ipam": {
                "type": "host-local",
                "dataDir": f"{tmp}/ipam",
                "ranges": [[{"subnet": "10.251.0.0/24", "gateway": gw}]],
                "routes": [{"dst": "0.0.0.0/0", "gw": gw}],
            },
        }
        cluster = {"cniVersion": "1.0.0", "name": "cluster", "plugins": [plugin]}
        netconf = {
            "cniVersion": "1.0.0",
            "name": "mn",
            "type": "multinet-shim",
            "daemonSocketPath": sock,
            "cniDir": f"{tmp}/state",
            "binDir": "/usr/lib/cni",
            "delegates": [cluster],
        }
        direct = dict(plugin, name="cluster", cniVersion="1.0.0")
        variants = {
            "delegate alone (bridge + host-local)": (["/usr/lib/cni/bridge"], direct),
            "thick: launcher -> multinetd": ([launcher], netconf),
            "thin: multinet": ([py, "-m", "multinet.thin.main"], netconf),
        }
        walls: dict[tuple[str, str], list[float]] = {}
        for i in range(n):
            for label, (argv, conf) in variants.items():
                for command in ("ADD", "DEL"):
                    env = dict(
                        os.environ,
                        CNI_COMMAND=command,
                        CNI_CONTAINERID=f"bench{i}",
                        CNI_NETNS=f"/var/run/netns/{ns}",
                        CNI_IFNAME="eth0",
                        CNI_PATH="/usr/lib/cni",
                    )
                    walls.setdefault((label, command), []).append(
                        timed(argv, json.dumps(conf).encode(), env)[0]
                    )
        print("\n| variant | command | min | median | max |\n|---|---|---:|---:|---:|")
        for (label, command), w in walls.items():
            print(row(f"{label} | {command}", w))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["ip", "link", "del", br], check=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=40, help="runs per variant")
    n = p.parse_args().n
    py = os.path.realpath(sys.executable)  # not a pyenv shim: that is a bash script
    tmp = tempfile.mkdtemp(prefix="mnd-bench-", dir="/tmp")
    sock = f"{tmp}/run/multinet.sock"
    with open(f"{tmp}/daemon.json", "w") as f:
        json.dump(
            {"daemonSocketPath": sock, "cniConfigDir": f"{tmp}/net.d", "logLevel": "warning"}, f
        )
    daemon = subprocess.Popen([py, "-m", "multinet.daemon.main", "--config", f"{tmp}/daemon.json"])
    try:
        from multinet.cli import install as launcher

        shim = launcher.install(tmp, py)
        while not os.path.exists(sock):
            time.sleep(0.05)
        print(f"load average before: {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, n={n}\n")
        shim_startup(n, sock, shim, py)
        add_del(n, tmp, sock, shim, py)
    finally:
        daemon.terminate()
        daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
