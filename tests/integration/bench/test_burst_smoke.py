"""`python -m bench --only burst` end to end with 3 pods: it runs, every pod gets its
interfaces, the kernel's share of the cgroup grows with them, and the cgroup is gone
after.
A smoke test of the benchmark's machinery, not a measurement (nothing timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[3]


def test_a_small_burst_runs_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "burst.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--only",
            "burst",
            "--pods",
            "3",
            "--limit",
            "0",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())["burst"]
    m = r["multinet"]
    assert r["floor"]["ok"] and m["ok"]
    assert m["pods_with_all_interfaces"] == 3 and m["ADD"]["failures"] == 0
    assert m["oom_kills"] == 0 and m["peak_mib"] > m["idle"]["cgroup_usage_mib"] > 0
    assert m["ADD"]["after"]["kernel"] > 0  # kernel memory is accounted (v1 kmem, v2 kernel)
    assert not Path(r["cgroup"]["path"]).exists()
    assert "mnb-burst" in r["cgroup"]["path"]
