"""`multinetctl install-shim`: the native shim and its thin fallback, atomically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from multinet.cli import install


def test_installs_the_native_shim_and_the_thin_launcher(tmp_path: Path) -> None:
    shim, thin = install.install(str(tmp_path), "/usr/bin/python3")
    assert (shim, thin) == (str(tmp_path / "multinet-shim"), str(tmp_path / "multinet"))
    assert Path(shim).read_bytes() == Path(install.native_shim()).read_bytes()
    text = Path(thin).read_text()
    assert text.startswith("#!/usr/bin/python3 -I\n")
    assert "from multinet.thin.main import main" in text
    assert all(Path(p).stat().st_mode & 0o777 == 0o755 for p in (shim, thin))
    assert sorted(os.listdir(tmp_path)) == ["multinet", "multinet-shim"]  # no temporary left


def test_installing_twice_replaces_both(tmp_path: Path) -> None:
    install.install(str(tmp_path), "/usr/bin/python3")
    inode = (tmp_path / "multinet-shim").stat().st_ino
    install.install(str(tmp_path), sys.executable)
    assert (tmp_path / "multinet-shim").stat().st_ino != inode  # a new file, renamed over
    assert (tmp_path / "multinet").read_text().startswith(f"#!{sys.executable} -I\n")


@pytest.mark.parametrize("python", ["python3", "/usr/bin/my python"])
def test_the_interpreter_must_be_an_absolute_path(tmp_path: Path, python: str) -> None:
    with pytest.raises(ValueError, match="absolute path"):
        install.install(str(tmp_path), python)
    assert os.listdir(tmp_path) == []


def test_the_installed_shim_without_a_daemon_runs_the_installed_thin_executable(
    tmp_path: Path,
) -> None:
    shim, _ = install.install(str(tmp_path), sys.executable)
    conf = {"cniVersion": "1.0.0", "daemonSocketPath": str(tmp_path / "none.sock")}
    out = subprocess.run(
        [shim],
        input=json.dumps(conf),
        env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "1.1.0" in json.loads(out.stdout)["supportedVersions"]
    assert "running VERSION in-process" in out.stderr
