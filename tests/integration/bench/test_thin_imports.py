"""The bench's pod (4 networks, from the API server) ADDed and DELed by the thin `multinet`
as `multinetctl install-shim` writes it, started as its launcher starts it (-IS), with
`-X importtime`: neither call imports what the per-call path was cut of
(docs/performance.md, "Thin mode: where the time goes")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.fixedcost import checked
from bench.scenario import Scenario, require_environment

pytestmark = pytest.mark.root

CUT = ["dataclasses", "logging", "typing", "inspect", "traceback", "threading", "copy"]
CUT_FROM_DEL = ["socket", "ssl", "ipaddress", "urllib.parse", "glob"]


def imported(log: Path) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in log.read_text().splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_thin_add_and_del_of_the_bench_pod_import_none_of_the_cut_modules(
    tmp_path: Path,
) -> None:
    require_environment()
    s = Scenario()
    try:
        nets = s.networks()
        net = s.thin_netconf()
        thin = s.thin()
        real = thin.with_name("multinet.real")
        os.rename(thin, real)
        python = real.read_text().splitlines()[0][2:].split()[0]
        thin.write_text(
            "#!/bin/sh\n"
            f'exec {python} -IS -X importtime {real} "$@" 2>"{tmp_path}/imports.$CNI_COMMAND"\n'
        )
        thin.chmod(0o755)
        pod = s.add_pod("mnb-thin", "imports", nets.annotation())
        netns = s.netns()
        for command in ("add", "del"):
            proc, _ = s.drive(command, net, netns, cni_args=pod.cni_args)
            checked(proc, f"thin {command}")
        assert s.links(netns) == []
    finally:
        s.close()
    add, delete = imported(tmp_path / "imports.ADD"), imported(tmp_path / "imports.DEL")
    assert {"multinet.cluster.http11", "multinet.engine.sandbox"} <= add  # a real ADD
    assert "multinet.engine.sandbox" in delete
    assert sorted(m for m in CUT if m in add) == []
    assert sorted(m for m in CUT + CUT_FROM_DEL if m in delete) == []
