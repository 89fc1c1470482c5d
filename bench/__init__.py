"""multinet's benchmarks (issues 4 and 11); results in docs/performance.md.

Run as root from the repository root: ``python -m bench`` (``make bench``);
``python -m bench --help`` lists the options. Modules:

- ``scenario``: the world every measurement runs in (bridges, namespaces, the
  Kubernetes API test server, daemons, the cnitool-compatible driver) and its
  teardown, which runs even on Ctrl-C; ``networks``: the pod's four networks;
  ``daemon``: a multinetd started for a benchmark;
- ``startup``: the native shim's own start-up + forward (VERSION -> multinetd)
  against floors measured in the same run (spawning ``/bin/true``; a tiny Rust
  client doing the same exchange), the fallback (daemon down: the shim execs thin
  multinet) and thin multinet's start-up;
- ``latency``: per-pod overhead: ADD/DEL of the four-network pod, side by side
  and interleaved: the delegates alone (the floor), thin, thick sequential, thick
  parallelAttach; plus API requests per ADD and per DEL (``apicount``) and the
  driver's own cost, which corrects the floor (``fixedcost``);
- ``concurrency``: 100 pods (``--pods``) ADDed, then DELed, at once through the
  thick shim: failures, leaks, wall time;
- ``engine``: the engine's own work per pod (no plugin processes), journalFsync off and on;
- ``memory``: the daemon's RSS with 1,000 NADs and 110 pods cached, over 1,000
  ADD/DEL cycles through the shim;
- ``burst``: a node reboot (issue 21): 150 pods (``--pods``) ADDed, then DELed, at
  once through the shim, multinetd with the thick DaemonSet's configuration in a
  memory cgroup with its limit (``--limit``): OOM kills, failures, peak, against the
  delegates alone; ``cgroup``: that memory cgroup (v1 or v2), made and removed;
- ``report``: min/median/max summaries and the printed tables.
"""

from __future__ import annotations
