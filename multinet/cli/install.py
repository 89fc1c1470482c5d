"""Install thick mode's executables in a CNI bin directory: the native `multinet-shim` and
the thin `multinet` it execs when the daemon does not answer.

`multinet-shim` is the Rust binary pip built (setuptools-rust) into the scripts directory
of the interpreter that runs this; it is copied as it is. `multinet` is a launcher,
`#!<python> -I`, for the thin executable: `python` must be an interpreter with multinet
installed (in the DaemonSet, the image's self-contained Python, copied to the same path
on the host). Each file is written atomically (a hidden temporary file in the directory,
then a rename): a CNI call exec'ing the old one at that moment keeps the old one.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

SHIM = "multinet-shim"
THIN = "multinet"


def native_shim() -> str:
    """The built native shim: beside this interpreter's scripts, else on PATH."""
    candidate = os.path.join(sysconfig.get_path("scripts"), SHIM)
    found = candidate if os.access(candidate, os.X_OK) else shutil.which(SHIM)
    if found is None:
        raise FileNotFoundError(
            f"no {SHIM} executable next to {sys.executable} or on PATH: "
            "reinstall multinet (pip install .) with a Rust toolchain"
        )
    with open(found, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise ValueError(f"{found} is not the native {SHIM} (an old Python launcher?)")
    return found


def thin_launcher_text(python: str) -> str:
    if not os.path.isabs(python) or any(c.isspace() for c in python):
        raise ValueError(f"python must be an absolute path without spaces, got {python!r}")
    return (
        f"#!{python} -I\n"
        f"# {THIN}, written by `multinetctl install-shim`: the thin CNI executable, which\n"
        f"# {SHIM} execs when the daemon does not answer.\n"
        "from multinet.thin.main import main\n"
        "main()\n"
    )


def _write_atomic(path: str, data: bytes) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


def install(dest_dir: str, python: str = sys.executable) -> list[str]:
    """Install both executables in `dest_dir`; their paths."""
    launcher = thin_launcher_text(python).encode()  # checked before anything is written
    with open(native_shim(), "rb") as f:
        binary = f.read()
    shim, thin = os.path.join(dest_dir, SHIM), os.path.join(dest_dir, THIN)
    _write_atomic(thin, launcher)  # first: a new shim must find its fallback
    _write_atomic(shim, binary)
    return [shim, thin]
