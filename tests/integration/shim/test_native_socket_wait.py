"""A shim started before the daemon's socket exists (a node booting, the daemon
restarting) waits `daemonSocketWait` seconds for it: served by the daemon when the
socket appears in time, the thin fallback once the bound has passed."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.shim.shimkit import (
    Daemon,
    Recorder,
    assert_fell_back,
    base_env,
    netconf,
    run,
)


def _start_shim(shim_bin: Path, stdin: bytes, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(shim_bin)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    proc.stdin = None  # written and closed: communicate() only reads
    return proc


def test_a_socket_that_appears_late_is_served_by_the_daemon(
    shim_bin: Path, recorder: Recorder, multinetd: Callable[[], Daemon], workdir: Path
) -> None:
    sock = workdir / "d.sock"  # where multinetd (below) binds
    stdin = netconf(
        daemonSocketPath=str(sock), daemonSocketWait=60, fallbackExecutable=str(recorder.path)
    )
    proc = _start_shim(shim_bin, stdin, base_env("VERSION"))
    try:
        time.sleep(0.3)
        assert proc.poll() is None  # still waiting: no socket yet
        assert not sock.exists()
        multinetd()  # the daemon starts now
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert err == b"", err  # no fallback
    assert proc.returncode == 0
    assert not recorder.ran()
    assert "supportedVersions" in json.loads(out)


def test_a_socket_that_never_appears_falls_back_after_the_bound(
    shim_bin: Path, recorder: Recorder, workdir: Path
) -> None:
    sock = workdir / "d.sock"
    stdin = netconf(
        daemonSocketPath=str(sock), daemonSocketWait=1.5, fallbackExecutable=str(recorder.path)
    )
    started = time.monotonic()
    result = run([shim_bin], stdin, base_env("DEL"))
    elapsed = time.monotonic() - started
    assert_fell_back(result, recorder, "DEL")
    assert "No such file or directory (waited 1.5 s for the daemon)" in result.stderr.decode()
    assert 1.5 <= elapsed < 30


def test_a_stale_socket_nobody_listens_on_is_waited_for_too(
    shim_bin: Path, recorder: Recorder, workdir: Path
) -> None:
    sock = workdir / "d.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(sock))  # a daemon killed without removing its socket: connect is refused
    stdin = netconf(
        daemonSocketPath=str(sock), daemonSocketWait=0.5, fallbackExecutable=str(recorder.path)
    )
    started = time.monotonic()
    result = run([shim_bin], stdin, base_env("ADD"))
    assert time.monotonic() - started >= 0.5
    assert_fell_back(result, recorder, "ADD")
    assert "Connection refused (waited 0.5 s for the daemon)" in result.stderr.decode()


def test_the_default_wait_is_a_few_seconds(
    shim_bin: Path, recorder: Recorder, workdir: Path
) -> None:
    stdin = netconf(
        daemonSocketPath=str(workdir / "d.sock"),
        daemonSocketWait=None,  # the key left out
        fallbackExecutable=str(recorder.path),
    )
    started = time.monotonic()
    result = run([shim_bin], stdin, base_env("DEL"))
    assert time.monotonic() - started >= 5
    assert_fell_back(result, recorder, "DEL")
    assert "(waited 5 s for the daemon)" in result.stderr.decode()


def test_no_wait_falls_back_at_once(shim_bin: Path, recorder: Recorder, workdir: Path) -> None:
    stdin = netconf(
        daemonSocketPath=str(workdir / "d.sock"),
        daemonSocketWait=0,
        fallbackExecutable=str(recorder.path),
    )
    result = run([shim_bin], stdin, base_env("DEL"))
    assert_fell_back(result, recorder, "DEL")
    assert "cannot connect to" in result.stderr.decode()
    assert "waited" not in result.stderr.decode()


def test_a_refusal_that_is_not_absence_is_not_waited_for(
    shim_bin: Path, recorder: Recorder, workdir: Path
) -> None:
    # A path that cannot be a socket (too long for sun_path): final at once, whatever the wait.
    stdin = netconf(
        daemonSocketPath="/" + "a" * 200, daemonSocketWait=60, fallbackExecutable=str(recorder.path)
    )
    started = time.monotonic()
    result = run([shim_bin], stdin, base_env("DEL"))
    assert time.monotonic() - started < 30
    assert_fell_back(result, recorder, "DEL")
    assert "not a usable socket path" in result.stderr.decode()
