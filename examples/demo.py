"""`make demo`: attach a pod network namespace to the networks its manifest asks for.

Uses the embedded default (the manifests source, examples/manifests), runs the real
`multinet` executable as a runtime would, shows the interfaces and the
network-status, then DELs and removes everything it created.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "examples" / "manifests"
BRIDGES = ("mndemo0", "mndemo1")
DEMO_RUN = "/run/multinet-demo"
POD_ARGS = (
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=demo;"
    "K8S_POD_UID=6f1c1d9e-0000-4000-8000-00000000d3e0"
)


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def multinet_executable() -> str:
    """The `multinet` console script beside this interpreter (`.venv/bin`, where make
    installs it: found without activating the venv), else on PATH."""
    beside = Path(sys.executable).parent / "multinet"
    return str(beside) if beside.is_file() else shutil.which("multinet") or "multinet"


def cni(command: str, conf: dict[str, object], netns: str, container: str) -> str:
    env = dict(
        os.environ,
        CNI_COMMAND=command,
        CNI_CONTAINERID=container,
        CNI_NETNS=netns,
        CNI_IFNAME="eth0",
        CNI_PATH="/usr/lib/cni",
        CNI_ARGS=POD_ARGS,
    )
    proc = subprocess.run(
        [multinet_executable()],
        input=json.dumps(conf),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"multinet {command} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def main() -> int:
    if os.geteuid() != 0:
        print("the demo creates a network namespace: run it as root", file=sys.stderr)
        return 1
    if not os.path.exists("/usr/lib/cni/bridge"):
        print("install Debian's containernetworking-plugins first (make deps)", file=sys.stderr)
        return 1
    taken = [b for b in BRIDGES if os.path.exists(f"/sys/class/net/{b}")]
    if taken:
        print(f"links {', '.join(taken)} exist: is another demo running?", file=sys.stderr)
        return 1
    name = f"mndemo-{uuid.uuid4().hex[:6]}"
    state = tempfile.mkdtemp(prefix="multinet-demo-")
    conf = {
        "cniVersion": "1.0.0",
        "name": "multinet",
        "type": "multinet",
        "manifests": str(MANIFESTS),
        "clusterNetwork": "cluster-net",
        "binDir": "/usr/lib/cni",
        "cniDir": state,
        "logToStderr": True,
    }
    sh("ip", "netns", "add", name)
    netns = f"/var/run/netns/{name}"
    container = f"demo-{uuid.uuid4().hex[:12]}"
    try:
        print(f"== pod default/demo, sandbox {netns}; its networks annotation asks for:")
        print("   default/storage as storage0 (macvlan + static + tuning mtu 1400)")
        print("   default/lab as net2 (bridge + host-local, mac 02:00:00:00:be:ef)\n")
        print("== ADD result (the cluster network's, for the runtime):")
        print(json.dumps(json.loads(cni("ADD", conf, netns, container)), indent=2))
        print("\n== interfaces in the pod:")
        print(sh("ip", "-n", name, "-br", "link", "show", "up"))
        print(sh("ip", "-n", name, "-br", "-4", "addr"))
        print("== routes in the pod:")
        print(sh("ip", "-n", name, "route"))
        print("== network-status (multinetctl status default/demo):")
        print(sh("multinetctl", "--cni-dir", state, "status", "default/demo"))
        cni("DEL", conf, netns, container)
        left = [line.split()[0] for line in sh("ip", "-n", name, "-br", "link").splitlines()]
        print("== after DEL the pod has only:", ", ".join(left))
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        for b in BRIDGES:
            subprocess.run(["ip", "link", "del", b], check=False, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(DEMO_RUN, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
