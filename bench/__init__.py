"""multinet's benchmarks (issue 4, "Performance"); results in docs/performance.md.

Run as root from the repository root: ``python -m bench`` (``make bench``);
``python -m bench --help`` lists the options. Modules:

- ``scenario``: the world every measurement runs in (bridges, namespaces, the
  Kubernetes API test server, daemons, the cnitool-compatible driver) and its
  teardown, which runs even on Ctrl-C; ``networks``: the pod's four networks;
  ``daemon``: a multinetd started for a benchmark;
- ``latency``: ADD/DEL of the four-network pod, side by side and interleaved:
  the delegates alone (the floor), thin, thick sequential, thick parallel;
  plus API requests per ADD and per DEL (``apicount``) and the driver's own
  cost, which corrects the floor (``fixedcost``);
- ``startup``: the shim's own start-up against the bare interpreter;
- ``concurrency``: 50 pods ADDed (then DELed) at once through the thick shim;
- ``memory``: the daemon's RSS with 1,000 NADs cached, over 1,000 ADD/DEL cycles;
- ``report``: min/median/max summaries and the printed tables.
"""

from __future__ import annotations
