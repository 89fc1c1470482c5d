"""Install the shim on the host: a five-line launcher run as `#!<python> -IS`.

`-I -S` (isolated, no site) is what makes the shim start in ~15 ms instead of
~70: site-packages and its .pth files are read only if the shim must fall back
to in-process, which adds them itself. The launcher imports `multinet.shim.main`
from the directory that holds the package (its bytecode is cached; compiling
the source on every call would cost ~2.5 ms). `python` must be an interpreter
that has the multinet package installed, for that fallback; in the DaemonSet it
is the image's self-contained Python, copied to the same path on the host.
"""

from __future__ import annotations

import os
import sys

import multinet

NAME = "multinet-shim"


def launcher_text(python: str) -> str:
    if not os.path.isabs(python) or any(c.isspace() for c in python):
        raise ValueError(f"python must be an absolute path without spaces, got {python!r}")
    root = os.path.dirname(os.path.dirname(os.path.abspath(multinet.__file__)))
    return (
        f"#!{python} -IS\n"
        "# multinet-shim, written by `multinetctl install-shim`; see multinet/shim/main.py.\n"
        "import sys\n"
        f"sys.path.insert(0, {root!r})\n"
        "from multinet.shim.main import main\n"
        "main()\n"
    )


def install(dest_dir: str, python: str = sys.executable, name: str = NAME) -> str:
    """Write the launcher atomically (a CNI call may be exec'ing the old one); its path."""
    path = os.path.join(dest_dir, name)
    tmp = os.path.join(dest_dir, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(launcher_text(python))
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path
