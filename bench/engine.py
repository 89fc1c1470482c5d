"""The engine's own work per pod: a 4-network pod's ADD then DEL through the dispatcher,
in-process, with the delegates replaced by the engine's unit-test executor (no process
is spawned: what is left is multinet's Python and the journal's file I/O), journalFsync
off and on, interleaved. The ratio of the two rows is what the fsyncs cost; the floor
of every other measurement (the delegates alone) is what this sits on top of."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.report import summarize, table
from bench.scenario import Scenario
from multinet.config.netconf import NetConf
from multinet.engine.engine import Engine
from multinet.engine.journal import FileJournalStore
from multinet.engine.routes import RoutePlan
from multinet.meta import dispatch
from multinet.meta.verbs import Verbs
from tests.unit.engine.fakes import FakeExecutor, FakeNetns, FakeStore, World

NETWORKS = ("cluster", "storage", "lab", "data")
NETNS = "/var/run/netns/bench-engine"
PODS_PER_SAMPLE = 20


class _Netns(FakeNetns):
    def apply_routes(self, path: str, plan: RoutePlan) -> None:  # no default-route here
        raise AssertionError("unexpected route plan")


def _cycle(stdin: bytes, make: Callable[[NetConf, Any], Verbs], n: int) -> None:
    for i in range(n):
        for command in ("ADD", "DEL"):
            env = {
                "CNI_COMMAND": command,
                "CNI_CONTAINERID": f"bench{i}",
                "CNI_NETNS": NETNS,
                "CNI_IFNAME": "eth0",
                "CNI_PATH": "/usr/lib/cni",
            }
            out = io.StringIO()
            if dispatch.serve(env, stdin, out, make) != 0:
                raise RuntimeError(f"engine bench {command} failed: {out.getvalue()}")


def run(scenario: Scenario, iterations: int, progress: Callable[[str], None] = print) -> Any:
    state = tempfile.mkdtemp(prefix="mnb-engine-", dir=str(scenario.root))
    world = World(pods={NETNS: set()})

    def make(conf: NetConf, req: Any) -> Verbs:
        engine = Engine(
            conf,
            store=FileJournalStore(conf.cni_dir),
            pod_netns=_Netns(world),
            executor=FakeExecutor(world, FakeStore(world)),
        )
        return Verbs(engine)

    def stdin(fsync: bool) -> bytes:
        delegates = [
            {"cniVersion": "1.0.0", "name": n, "type": "bridge", "bridge": "unused"}
            for n in NETWORKS
        ]
        conf = {"cniVersion": "1.0.0", "name": "m", "type": "multinet", "cniDir": state}
        return json.dumps({**conf, "journalFsync": fsync, "delegates": delegates}).encode()

    rows = {"journalFsync: false (default)": stdin(False), "journalFsync: true": stdin(True)}
    samples: dict[str, list[float]] = {label: [] for label in rows}
    try:
        for body in rows.values():
            _cycle(body, make, 5)  # warm: bytecode, page cache
        for _ in range(max(iterations, 3)):
            for label, body in rows.items():
                started = time.perf_counter()
                _cycle(body, make, PODS_PER_SAMPLE)
                samples[label].append((time.perf_counter() - started) / PODS_PER_SAMPLE)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    progress(f"  engine: {max(iterations, 3)} samples of {PODS_PER_SAMPLE} pods per row")
    out = {label: summarize(v).to_dict() for label, v in samples.items()}
    off, on = (out[label]["median"] for label in rows)
    return {"rows": out, "fsync_over_none": round(on / off, 2) if off else None}


def render(r: dict[str, Any]) -> str:
    rows = [
        [label, f"{s['min']:.2f}", f"{s['median']:.2f}", f"{s['max']:.2f}"]
        for label, s in r["rows"].items()
    ]
    return "\n".join(
        [
            table(
                ["engine work per pod ADD+DEL (ms)", "min", "median", "max"],
                rows,
                "The engine alone: 4 networks, no plugin processes",
            ),
            f"journalFsync: true costs x{r['fsync_over_none']} the engine's own work",
        ]
    )
