"""`multinetctl install-shim`: the host launcher of the Python shim."""

from __future__ import annotations

from pathlib import Path

import pytest

from multinet.cli import install as launcher


def test_launcher_needs_an_absolute_interpreter(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        launcher.install(str(tmp_path), "python3")
    path = launcher.install(str(tmp_path), "/usr/bin/python3")
    text = Path(path).read_text()
    assert text.startswith("#!/usr/bin/python3 -IS\n")
    assert "from multinet.shim.main import main" in text
    assert Path(path).stat().st_mode & 0o777 == 0o755
