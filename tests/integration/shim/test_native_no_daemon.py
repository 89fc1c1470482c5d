"""No daemon at all: the native shim execs the thin executable with the same
argv, environment and byte-identical stdin, for every command."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.shim.shimkit import Recorder, assert_fell_back, base_env, fsenv, netconf, run

MiB = 1 << 20
COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")


@pytest.fixture
def missing_socket(workdir: Path) -> str:
    return str(workdir / "no-such-dir" / "multinet.sock")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_falls_back(
    shim_bin: Path, recorder: Recorder, missing_socket: str, command: str
) -> None:
    stdin = netconf(daemonSocketPath=missing_socket, fallbackExecutable=str(recorder.path))
    env = base_env(command, CNI_ARGS="K8S_POD_NAME=p\udcff", OTHER="=\x01é")
    args = ["first", "sec ond", "\udce9"]
    result = run([shim_bin, *args], stdin, env)
    assert_fell_back(result, recorder, command)
    assert (
        f"cannot connect to {missing_socket}: No such file or directory" in result.stderr.decode()
    )
    assert recorder.stdin() == stdin
    assert recorder.env() == fsenv(env)
    assert recorder.argv() == [os.fsencode(recorder.path), *map(os.fsencode, args)]


def test_a_1_mib_stdin_is_byte_identical(
    shim_bin: Path, recorder: Recorder, missing_socket: str
) -> None:
    pad = bytes(range(256)).replace(b'"', b"").replace(b"\\", b"")
    pad = pad.translate(None, bytes(range(32))) * (MiB // 200)
    stdin = netconf(daemonSocketPath=missing_socket, fallbackExecutable=str(recorder.path))
    stdin = stdin[:-1] + b', "pad": "' + pad + b'"}'
    assert len(stdin) > MiB
    result = run([shim_bin], stdin, base_env("ADD"))
    assert_fell_back(result, recorder, "ADD")
    assert recorder.stdin() == stdin


def test_a_stdin_over_16_mib_skips_the_daemon(
    shim_bin: Path, recorder: Recorder, workdir: Path
) -> None:
    # A truncated netconf names no fallbackExecutable: the default, beside the shim.
    shim = recorder.path.parent / "multinet-shim"
    shutil.copy(shim_bin, shim)
    stdin = os.urandom(17 * MiB + 3)
    env = base_env("DEL")
    result = run([shim], stdin, env)
    assert_fell_back(result, recorder, "DEL")
    assert "stdin is larger than 16 MiB" in result.stderr.decode()
    assert recorder.stdin() == stdin
    assert recorder.env() == fsenv(env)


def test_the_default_is_multinet_beside_the_shim(
    shim_bin: Path, recorder: Recorder, missing_socket: str
) -> None:
    shim = recorder.path.parent / "multinet-shim"
    shutil.copy(shim_bin, shim)
    stdin = netconf(daemonSocketPath=missing_socket)
    env = base_env("DEL", PATH="/nonexistent")
    result = run([shim], stdin, env)
    assert_fell_back(result, recorder, "DEL")
    assert recorder.argv()[0] == os.fsencode(recorder.path)
    assert recorder.stdin() == stdin


def test_then_multinet_on_path(
    shim_bin: Path, recorder: Recorder, workdir: Path, missing_socket: str
) -> None:
    (workdir / "alone").mkdir()
    shim = workdir / "alone" / "multinet-shim"
    shutil.copy(shim_bin, shim)
    stdin = netconf(daemonSocketPath=missing_socket, fallbackExecutable="relative/ignored")
    env = base_env("DEL", PATH=f"/nonexistent:{recorder.path.parent}:/usr/bin")
    result = run([shim], stdin, env)
    assert_fell_back(result, recorder, "DEL")
    assert recorder.stdin() == stdin


# null is not a version: the default is shown; one multinet cannot speak is never echoed
@pytest.mark.parametrize(
    ("version", "shown"), [("0.4.0", "0.4.0"), (None, "1.0.0"), ("9.9.9", "1.1.0")]
)
def test_a_missing_fallback_executable_is_a_cni_error(
    shim_bin: Path, workdir: Path, missing_socket: str, version: str | None, shown: str
) -> None:
    missing = workdir / "missing" / "multinet"
    stdin = netconf(
        cniVersion=version, daemonSocketPath=missing_socket, fallbackExecutable=str(missing)
    )
    result = run([shim_bin], stdin, base_env("DEL"))
    assert result.returncode == 1
    assert "running DEL in-process" in result.stderr.decode()
    assert json.loads(result.stdout) == {
        "cniVersion": shown,
        "code": 5,
        "msg": "multinet-shim: daemon unavailable and cannot run "
        f"{missing}: No such file or directory",
    }


def test_a_fallback_that_cannot_run_is_a_cni_error(
    shim_bin: Path, recorder: Recorder, missing_socket: str
) -> None:
    recorder.path.chmod(0o644)
    stdin = netconf(daemonSocketPath=missing_socket, fallbackExecutable=str(recorder.path))
    result = run([shim_bin], stdin, base_env("ADD"))
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert answer["code"] == 5
    assert answer["msg"].endswith(f"cannot run {recorder.path}: Permission denied")
    assert not recorder.ran()
