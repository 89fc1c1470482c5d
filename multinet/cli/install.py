"""Install multinet's CNI executables in a CNI bin directory: the native `multinet-shim`,
the thin `multinet` it execs when the daemon does not answer, and the plugins multinet
ships as executables of their own (`multinet-ipam`, `multinet-sriov`).

`multinet-shim` is the Rust binary pip built (setuptools-rust) into the scripts directory
of the interpreter that runs this; it is copied as it is. The others are launchers,
`#!<python> -IS`, each running its module's `main()` (LAUNCHED): `python` must be an
interpreter with multinet installed (in the DaemonSet, the image's self-contained Python,
copied to the same path on the host). Each starts without `site` (-S: every .pth file of
the environment, an editable install's finder; ~20 ms of every CNI call), so it names
the paths `site` would have added itself: asked of `python` here once, and checked by
importing every launched module through them before anything is written. Each file is
written atomically (a hidden temporary file of its own in the directory, then a rename;
the installed file is never opened for writing): a CNI call exec'ing the old one at that
moment keeps the old one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from multinet.cluster.kubeconfig import token_kubeconfig

SHIM = "multinet-shim"
THIN = "multinet"
IPAM = "multinet-ipam"
SRIOV = "multinet-sriov"
# The executables written as launchers, each the module whose main() it runs (as the
# console scripts of pyproject.toml; a test holds them equal). The thin one first: a new
# shim must find its fallback.
LAUNCHED = {
    THIN: "multinet.thin.main",
    IPAM: "multinet.ipam.plugin",
    SRIOV: "multinet.plugins.sriov.plugin",
}


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


# Asked of the launcher's interpreter: its sys.path with and without `site`, and where
# `multinet` comes from (an editable install's finder is not a sys.path entry: the
# checkout it maps to is named instead).
_PATHS_PROBE = (
    "import sys, json, os, multinet\n"
    "print(json.dumps([sys.path, os.path.dirname(os.path.dirname(multinet.__file__))]))"
)
_BARE_PROBE = "import sys, json; print(json.dumps(sys.path))"
_CHECK_PROBE = f"import {', '.join(LAUNCHED.values())}, multinet; print(multinet.__file__)"


def _ask(python: str, flags: str, code: str) -> str:
    try:
        out = subprocess.run(
            [python, flags, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as e:
        raise ValueError(f"cannot run {python}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ValueError(f"{python} {flags} did not answer in 60 s") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise ValueError(f"{python} {flags} cannot import multinet: {last}")
    return out.stdout.strip()


def site_paths(python: str) -> list[str]:
    """The sys.path entries `python` gets from `site` (its site-packages, what .pth files
    add) and the directory `multinet` is imported from: what the -IS launcher must add."""
    try:
        with_site, root = json.loads(_ask(python, "-I", _PATHS_PROBE))
        bare = json.loads(_ask(python, "-IS", _BARE_PROBE))
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{python} answered its sys.path in a form not understood: {e}") from None
    extra = [p for p in with_site if p not in bare]
    if root not in extra and root not in bare:
        extra.append(root)
    return extra


def launcher_text(python: str, paths: list[str], name: str = THIN) -> str:
    """The launcher of `name` (a key of LAUNCHED): `python -IS` with `paths` added."""
    if not os.path.isabs(python) or any(c.isspace() for c in python):
        raise ValueError(f"python must be an absolute path without spaces, got {python!r}")
    if not all(isinstance(p, str) and os.path.isabs(p) for p in paths):
        raise ValueError(f"the launcher's paths must be absolute, got {paths!r}")
    role = (
        f"the thin CNI executable, which {SHIM} execs\n# when the daemon does not answer."
        if name == THIN
        else "a CNI plugin of multinet."
    )
    return (
        f"#!{python} -IS\n"
        f"# {name}, written by `multinetctl install-shim` or `install`: {role}\n"
        "# Started without `site` (-S), it adds the paths site would (found when it was\n"
        "# written): reinstall after changing the interpreter's environment.\n"
        "import gc\n"
        "import sys\n"
        "\n"
        "gc.disable()  # no collector passes over the imports' objects, which live to the exit\n"
        f"sys.path += {paths!r}\n"
        "try:\n"
        f"    from {LAUNCHED[name]} import main\n"
        "except ImportError as e:\n"
        "    import json\n"
        "\n"
        "    msg = f'cannot import multinet with the paths of {sys.argv[0]}: {e}'\n"
        "    hint = 'run multinetctl install-shim again with this interpreter'\n"
        "    error = {'cniVersion': '1.0.0', 'code': 5, 'msg': msg, 'details': hint}\n"
        "    json.dump(error, sys.stdout)\n"
        "    sys.exit(1)\n"
        "gc.freeze()  # nor at the exit's collection: ~10 % of a call\n"
        "gc.enable()\n"
        "main()\n"
    )


def check_launcher(python: str, paths: list[str]) -> None:
    """Import every launched module as the launchers will, and from where `python -I` does."""
    prelude = f"import sys; sys.path += {paths!r}\n"
    found = _ask(python, "-IS", prelude + _CHECK_PROBE)
    expected = _ask(python, "-I", _CHECK_PROBE)
    if found != expected:
        raise ValueError(f"the launcher's paths import {found}, {python} -I imports {expected}")


def _write_atomic(path: str, data: bytes, mode: int = 0o755) -> None:
    """Write a new file under a hidden name of its own in the same directory, then rename
    it over `path`. The file at `path` is never opened for writing: a CNI call exec'ing it
    keeps the old one (never "Text file busy"), and a call exec'ing it after the rename gets
    the complete new one. The temporary name is unique, so two installers at once (an
    upgrade's init container beside `install-shim` by hand) never write the same file."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def launchers(python: str) -> dict[str, bytes]:
    """Every launcher for `python` (LAUNCHED's order), its paths asked of it once and checked."""
    if not os.path.isabs(python) or any(c.isspace() for c in python):
        raise ValueError(f"python must be an absolute path without spaces, got {python!r}")
    paths = site_paths(python)
    texts = {name: launcher_text(python, paths, name).encode() for name in LAUNCHED}
    check_launcher(python, paths)
    return texts


def install_thin(dest_dir: str, python: str = sys.executable) -> str:
    """Install the thin launcher alone in `dest_dir`; its path."""
    thin = os.path.join(dest_dir, THIN)
    _write_atomic(thin, launchers(python)[THIN])
    return thin


def install(dest_dir: str, python: str = sys.executable) -> dict[str, str]:
    """Install every executable in `dest_dir`; each one's path, by name."""
    texts = launchers(python)  # checked before anything is written
    with open(native_shim(), "rb") as f:
        binary = f.read()
    paths = {name: os.path.join(dest_dir, name) for name in (*texts, SHIM)}
    for name, text in texts.items():  # the thin one first: a new shim must find its fallback
        _write_atomic(paths[name], text)
    _write_atomic(paths[SHIM], binary)
    return paths


# -- multinetctl install: what the DaemonSet's init container runs -------------------

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
THIN_CONFIG = "00-multinet.conflist"


@dataclass(frozen=True)
class Plan:
    """Where `install_node` writes: host paths, each under `host_root` (the host's / as
    mounted in the init container). `token_file` is the host path of a token the kubelet
    keeps fresh (the pod's projected service-account token), referenced, never copied."""

    host_root: str
    bin_dir: str = "/opt/cni/bin"
    python: str = sys.executable
    runtime_src: str = ""  # the image's /opt/multinet/<version>: copied to the same host path
    runtime_dest: str = ""
    kubeconfig: str = "/etc/cni/net.d/multinet.d/multinet.kubeconfig"
    token_file: str = ""
    service_account_dir: str = SERVICE_ACCOUNT_DIR
    api_server: str = ""
    cni_conf_dir: str = "/etc/cni/net.d"
    thin_config: str = ""  # a file (the ConfigMap's): installed as 00-multinet.conflist

    def host(self, path: str) -> str:
        return os.path.join(self.host_root, path.lstrip("/"))


def api_server_from_env(env: Mapping[str, str]) -> str:
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ValueError("no API server: KUBERNETES_SERVICE_HOST is unset (give --api-server)")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def projected_token_path(kubelet_dir: str, pod_uid: str, volume: str) -> str:
    """The host path of a pod's projected service-account token volume's token: the
    kubelet rewrites it before it expires, so a kubeconfig's tokenFile can point at it."""
    return os.path.join(
        kubelet_dir, "pods", pod_uid, "volumes", "kubernetes.io~projected", volume, "token"
    )


def kubeconfig_text(server: str, ca_file: str, token_file: str) -> str:
    """A kubeconfig that reads the token from a file at each use: rotation needs no rewrite."""
    return token_kubeconfig(server, ca_file, token_file)


def copy_tree_atomic(src: str, dest: str) -> bool:
    """Copy a versioned tree once: to a hidden sibling, then renamed. A tree already there
    is kept (it is the same version, and running shims may use it); True when copied."""
    if os.path.isdir(dest):
        return False
    parent = os.path.dirname(dest.rstrip("/"))
    os.makedirs(parent, exist_ok=True)
    # A hidden name of its own: another installer copying the same version at once
    # neither removes nor writes into this copy.
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest.rstrip('/'))}.", dir=parent)
    try:
        shutil.copytree(src, tmp, symlinks=True, dirs_exist_ok=True)
        os.chmod(tmp, os.stat(src).st_mode & 0o7777)
        os.rename(tmp, dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY) and os.path.isdir(dest):
            return False  # the other installer renamed its copy first: the same version
        raise
    return True


def install_node(plan: Plan, env: Mapping[str, str] = os.environ) -> list[str]:
    """Everything a node needs; safe to run again and during an upgrade (each file is
    replaced atomically, a versioned runtime tree is never changed in place)."""
    written: list[str] = []
    if plan.runtime_src:
        dest = plan.host(plan.runtime_dest or plan.runtime_src)
        if copy_tree_atomic(plan.runtime_src, dest):
            written.append(dest)
    written += install(plan.host(plan.bin_dir), plan.python).values()
    if plan.token_file:
        ca_src = os.path.join(plan.service_account_dir, "ca.crt")
        kube_dir = os.path.dirname(plan.kubeconfig)
        ca_dest = os.path.join(kube_dir, "ca.crt")
        with open(ca_src, "rb") as f:
            _write_atomic(plan.host(ca_dest), f.read(), 0o644)
        server = plan.api_server or api_server_from_env(env)
        text = kubeconfig_text(server, ca_dest, plan.token_file)
        _write_atomic(plan.host(plan.kubeconfig), text.encode(), 0o600)
        written += [plan.host(ca_dest), plan.host(plan.kubeconfig)]
    if plan.thin_config:
        with open(plan.thin_config) as f:
            conf = json.load(f)
        if not isinstance(conf, dict):
            raise ValueError(f"{plan.thin_config}: the thin config must be a JSON object")
        if plan.token_file and "kubeconfig" not in conf:
            conf["kubeconfig"] = plan.kubeconfig
        dest = plan.host(os.path.join(plan.cni_conf_dir, THIN_CONFIG))
        _write_atomic(dest, (json.dumps(conf, indent=2) + "\n").encode(), 0o644)
        written.append(dest)
    return written


def uninstall_node(plan: Plan) -> list[str]:
    """Remove what install_node wrote (the versioned runtime trees are left: running
    shims may still use them; docs/install.md says how to remove them)."""
    removed = []
    for path in (
        *(os.path.join(plan.bin_dir, name) for name in (SHIM, *LAUNCHED)),
        os.path.join(plan.cni_conf_dir, THIN_CONFIG),
        plan.kubeconfig,
        os.path.join(os.path.dirname(plan.kubeconfig), "ca.crt"),
    ):
        try:
            os.remove(plan.host(path))
            removed.append(plan.host(path))
        except FileNotFoundError:
            pass
    return removed
