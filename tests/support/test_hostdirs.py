"""The guard of the host's default directories (hostdirs) sees what a plugin writes there."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support import hostdirs


def _touch_later(path: Path) -> None:
    """Rewrite `path` with an mtime no filesystem rounds onto the old one."""
    path.write_text("x")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_nothing_written_is_no_change(tmp_path: Path) -> None:
    (tmp_path / "networks" / "net-a").mkdir(parents=True)
    (tmp_path / "networks" / "net-a" / "lock").write_text("")
    roots = [tmp_path, tmp_path / "absent"]
    assert hostdirs.changes(hostdirs.snapshot(roots), hostdirs.snapshot(roots)) == []


def test_host_local_bookkeeping_in_a_new_network_is_created(tmp_path: Path) -> None:
    (tmp_path / "networks").mkdir()
    before = hostdirs.snapshot([tmp_path])
    net = tmp_path / "networks" / "net-a"
    net.mkdir()
    (net / "lock").write_text("")
    (net / "last_reserved_ip.0").write_text("10.1.2.2")
    _bump(tmp_path / "networks")
    assert hostdirs.changes(before, hostdirs.snapshot([tmp_path])) == [
        f"modified {tmp_path}/networks",
        f"created {net}",
        f"created {net}/last_reserved_ip.0",
        f"created {net}/lock",
    ]


def test_a_root_that_appears_is_created(tmp_path: Path) -> None:
    root = tmp_path / "multinet"
    before = hostdirs.snapshot([root])
    (root / "journal").mkdir(parents=True)
    assert hostdirs.changes(before, hostdirs.snapshot([root])) == [
        f"created {root}",
        f"created {root}/journal",
    ]


def test_a_file_written_and_removed_again_still_modified_its_directory(tmp_path: Path) -> None:
    tuning = tmp_path / "tuning"
    tuning.mkdir()
    before = hostdirs.snapshot([tmp_path])
    (tuning / "c1-eth0.json").write_text("{}")
    (tuning / "c1-eth0.json").unlink()
    _bump(tuning)
    assert hostdirs.changes(before, hostdirs.snapshot([tmp_path])) == [f"modified {tuning}"]


def test_a_rewritten_file_and_a_removed_one(tmp_path: Path) -> None:
    (tmp_path / "last_reserved_ip.0").write_text("10.1.2.2")
    (tmp_path / "old").write_text("")
    before = hostdirs.snapshot([tmp_path])
    _touch_later(tmp_path / "last_reserved_ip.0")
    (tmp_path / "old").unlink()
    _bump(tmp_path)
    assert hostdirs.changes(before, hostdirs.snapshot([tmp_path])) == [
        f"modified {tmp_path}",
        f"modified {tmp_path}/last_reserved_ip.0",
        f"removed {tmp_path}/old",
    ]


def test_without_modified_only_what_is_left_or_gone_counts(tmp_path: Path) -> None:
    """The session's check, and a `host_dirs` test's: a cache file made and removed
    again is no change, one left behind is."""
    before = hostdirs.snapshot([tmp_path])
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "net-c1-eth0").write_text("{}")
    (tmp_path / "results" / "net-c1-eth0").unlink()
    (tmp_path / "results").rmdir()
    _bump(tmp_path)
    after = hostdirs.snapshot([tmp_path])
    assert hostdirs.changes(before, after) == [f"modified {tmp_path}"]
    assert hostdirs.changes(before, after, modified=False) == []
    (tmp_path / "left").write_text("")
    left = hostdirs.snapshot([tmp_path])
    assert hostdirs.changes(before, left, modified=False) == [f"created {tmp_path}/left"]


def test_the_default_roots_hold_multinets_defaults() -> None:
    """A default directory of multinet outside every root would go unwatched."""
    from multinet.config import netconf
    from multinet.daemon import config as daemon
    from multinet.engine import multus_cache
    from multinet.plugins.sriov import config as sriov

    defaults = [
        netconf.DEFAULT_CNI_DIR,
        netconf.DEFAULT_CONF_DIR,
        netconf.DEFAULT_BIN_DIR,
        netconf.DEFAULT_SOCKET,
        netconf.DEFAULT_DEVICE_INFO_DIR,
        daemon.DEFAULT_CONFIG_FILE,
        daemon.DEFAULT_CNI_CONFIG_DIR,
        daemon.DEFAULT_DHCP_SOCKET,
        multus_cache.MULTUS_CNI_DIR,
        sriov.DEFAULT_STATE_DIR,
        "/var/lib/cni/networks",  # host-local's dataDir
        "/run/cni/tuning",  # tuning's
    ]
    roots = [str(r) for r in hostdirs.ROOTS]
    unwatched = [
        d
        for d in defaults
        if not any(Path(d.replace("/var/run/", "/run/")).is_relative_to(r) for r in roots)
    ]
    assert unwatched == []


def test_a_snapshot_stops_at_the_limit(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"f{i}").write_text("")
    assert len(hostdirs.snapshot([tmp_path], limit=4)) == 1 + 4
