"""The driver's own fixed cost per run, to correct the floor for its extra driver runs.

The floor runs the driver four times (one per network), every multinet variant
once. Each round here runs, in a fresh namespace: a loopback-only network
through the driver, the loopback plugin directly, and a process that does
nothing (/bin/true). The driver's cost per run is then
(driver + loopback) - (loopback alone - spawn): starting the driver, libcni's
work (config, results cache) and our spawning it, without the delegate.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from typing import Any

from bench.daemon import BenchError
from bench.networks import CNI_VERSION
from bench.report import summarize, timed
from bench.scenario import FALLBACK_MARK, REFERENCE_PLUGINS, Scenario
from tests.conformance.libcni import write_netconf

LOOPBACK = "mnb-lo"
ROWS = ("loopback via driver", "loopback direct", "spawn /bin/true")
COMMANDS = ("ADD", "DEL")


def checked(proc: subprocess.CompletedProcess[str], what: str) -> None:
    """A failed call, or a shim that fell back to in-process, stops the run."""
    if proc.returncode != 0 or FALLBACK_MARK in proc.stderr:
        raise BenchError(
            f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}".rstrip()
        )


def _loopback_direct(scenario: Scenario, command: str, netns: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update(
        CNI_COMMAND=command,
        CNI_CONTAINERID=scenario.container_id(netns),
        CNI_NETNS=netns,
        CNI_IFNAME="eth0",
        CNI_PATH=str(REFERENCE_PLUGINS),
    )
    stdin = f'{{"cniVersion":"{CNI_VERSION}","name":"{LOOPBACK}","type":"loopback"}}'
    proc, seconds = timed(
        lambda: subprocess.run(
            [str(REFERENCE_PLUGINS / "loopback")],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )
    checked(proc, f"loopback {command} (direct)")
    return seconds


class DriverCost:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.seconds: dict[str, dict[str, list[float]]] = {
            row: {c: [] for c in COMMANDS} for row in ROWS
        }
        write_netconf(
            scenario.confdir,
            {"cniVersion": CNI_VERSION, "name": LOOPBACK, "plugins": [{"type": "loopback"}]},
        )

    def round(self) -> None:
        scenario = self.scenario
        netns = scenario.netns()
        try:
            for command in COMMANDS:
                proc, seconds = scenario.drive(command.lower(), LOOPBACK, netns)
                checked(proc, f"driver: {command} {LOOPBACK}")
                self.seconds["loopback via driver"][command].append(seconds)
            for command in COMMANDS:
                seconds = _loopback_direct(scenario, command, netns)
                self.seconds["loopback direct"][command].append(seconds)
            _, seconds = timed(lambda: subprocess.run(["/bin/true"], check=True))
            self.seconds["spawn /bin/true"]["ADD"].append(seconds)
        finally:
            scenario.drop_netns(netns)

    def per_run_ms(self, command: str) -> float:
        """The driver's own cost per run (median ms), never below zero."""
        via = statistics.median(self.seconds["loopback via driver"][command])
        direct = statistics.median(self.seconds["loopback direct"][command])
        spawn = statistics.median(self.seconds["spawn /bin/true"]["ADD"])
        return max(0.0, via - (direct - spawn)) * 1000

    def summaries(self) -> dict[str, Any]:
        return {
            row: {c: summarize(s).to_dict() for c, s in by_command.items() if s}
            for row, by_command in self.seconds.items()
        }
