"""Fixtures for thick-mode tests: a real multinetd in a subprocess, the shim, real
network namespaces and Debian's reference plugins (/usr/lib/cni).

Tests that need the kernel skip when not root. Everything a test creates has a
unique name (`mnd-<hex>` namespaces, `mndb<hex>` bridges, a `/tmp/mnd-*` run
directory for the socket: unix socket paths are limited to 108 bytes) and is
removed afterwards.

Fixtures:

``sandbox`` -> Sandbox
    Directories for one test (``run``: the socket's directory, ``state``:
    multinet's cniDir, ``ipam``: host-local's dataDir, ``bin``: binDir holding
    the test plugin ``mndtest``, ``net_d``: a CNI config dir), a bridge created
    up front with a fixed MAC (``bridge``) and a random /24 (``subnet``).
    ``netconf(slow=False)``: the shim netconf (static delegates: the cluster
    network bridge + host-local, and with ``slow`` a second network of type
    ``mndtest``). ``netns()``: a fresh namespace path. ``daemon(**keys)``: start
    multinetd with a config of ``keys`` (socket in ``run``); stopped after the
    test. ``shim(command, cid, netns, ...)``: run the shim as the runtime
    would. ``block("ADD"|"DEL")``/``unblock()``: make ``mndtest`` wait; ``calls()``:
    the lines ``mndtest`` logged (``COMMAND CONTAINERID IFNAME args=.. var=..``).
    Leak checks: ``allocations()``, ``journals()``, ``bridge_ports()``,
    ``links(netns)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon.sandbox import Sandbox, require_root


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    require_root()
    box = Sandbox(tmp_path)
    box.create_bridge()
    try:
        yield box
    finally:
        box.close()
