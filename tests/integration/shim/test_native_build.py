"""The shim builds from a clean tree with no registry and no network (as in CI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.shim.shimkit import base_env, netconf, run

pytestmark = pytest.mark.root  # unshare -n: the build runs with no network at all

MANIFEST = Path(__file__).resolve().parents[3] / "shim" / "Cargo.toml"


def toolchains() -> dict[str, str]:
    """PATH values to build with: the one on PATH, and Debian's (Rust 1.63, what
    `make deps` installs when cargo is missing) when it is installed too."""
    found = {"PATH": os.environ.get("PATH", "")}
    if Path("/usr/bin/cargo").is_file() and Path("/usr/bin/rustc").is_file():
        found["debian"] = "/usr/bin:/bin"
    return found


def test_cargo_builds_offline_from_a_clean_target(workdir: Path) -> None:
    assert shutil.which("cargo"), "cargo is not on PATH (make deps installs Debian's)"
    for name, path in toolchains().items():
        target = workdir / f"target-{name}"
        env = dict(os.environ, PATH=path, CARGO_TARGET_DIR=str(target), CARGO_NET_OFFLINE="true")
        argv = ["unshare", "--net", "cargo", "build", "--offline", "--locked", "--release"]
        build = subprocess.run(
            [*argv, "--quiet", "--manifest-path", str(MANIFEST)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert build.returncode == 0, (name, build.stderr)
        binary = target / "release" / "multinet-shim"
        assert binary.read_bytes()[:4] == b"\x7fELF"
        missing = str(workdir / "missing")
        stdin = netconf(daemonSocketPath=missing, fallbackExecutable=missing)
        result = run([binary], stdin, base_env("DEL"))
        assert result.returncode == 1
        assert json.loads(result.stdout)["code"] == 5


def test_the_rust_unit_tests_pass(workdir: Path) -> None:
    cargo = shutil.which("cargo")
    assert cargo, "cargo is not on PATH (make deps installs Debian's)"
    env = dict(os.environ, CARGO_TARGET_DIR=str(workdir / "target"), CARGO_NET_OFFLINE="true")
    test = subprocess.run(
        [
            "unshare",
            "--net",
            cargo,
            "test",
            "--offline",
            "--locked",
            "--manifest-path",
            str(MANIFEST),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "test result: ok." in test.stdout
