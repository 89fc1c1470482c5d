"""`multinetctl install-shim`: the native shim, its thin fallback and the plugins' launchers,
atomically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import tomllib
from pathlib import Path

import pytest

import multinet
from multinet.cli import install

EXECUTABLES = ["multinet", "multinet-ipam", "multinet-shim", "multinet-sriov"]


def _version(executable: str) -> dict[str, object]:
    out = subprocess.run(
        [executable],
        input='{"cniVersion": "1.0.0"}',
        env={"CNI_COMMAND": "VERSION"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer: dict[str, object] = json.loads(out.stdout)
    return answer


def test_installs_the_native_shim_the_thin_launcher_and_the_plugins(tmp_path: Path) -> None:
    paths = install.install(str(tmp_path), sys.executable)
    assert paths == {name: str(tmp_path / name) for name in EXECUTABLES}
    shim = paths["multinet-shim"]
    assert Path(shim).read_bytes() == Path(install.native_shim()).read_bytes()
    for name, module in [
        ("multinet", "multinet.thin.main"),
        ("multinet-ipam", "multinet.ipam.plugin"),
        ("multinet-sriov", "multinet.plugins.sriov.plugin"),
    ]:
        text = Path(paths[name]).read_text()
        assert text.startswith(f"#!{sys.executable} -IS\n")
        assert f"from {module} import main" in text
    assert all(Path(p).stat().st_mode & 0o777 == 0o755 for p in paths.values())
    assert sorted(os.listdir(tmp_path)) == EXECUTABLES  # no temporary left


def test_the_plugins_launchers_answer_version(tmp_path: Path) -> None:
    paths = install.install(str(tmp_path), sys.executable)
    scripts = sysconfig.get_path("scripts")
    for name in ("multinet-ipam", "multinet-sriov"):
        answer = _version(paths[name])
        assert answer == {
            "cniVersion": "1.1.0",
            "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
        }, name
        assert answer == _version(os.path.join(scripts, name))  # as pip's console script


def test_the_launched_modules_are_the_console_scripts() -> None:
    pyproject = Path(multinet.__file__).parent.parent / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    for name, module in install.LAUNCHED.items():
        assert scripts[name] == f"{module}:main"


def test_install_thin_writes_the_launcher_alone(tmp_path: Path) -> None:
    thin = install.install_thin(str(tmp_path), sys.executable)
    assert os.listdir(tmp_path) == ["multinet"]
    assert _version(thin)["cniVersion"] == "1.0.0"


def test_installing_twice_replaces_every_one(tmp_path: Path) -> None:
    install.install(str(tmp_path), sys.executable)
    inodes = [(tmp_path / name).stat().st_ino for name in EXECUTABLES]
    install.install(str(tmp_path), sys.executable)
    again = [(tmp_path / name).stat().st_ino for name in EXECUTABLES]
    assert all(a != b for a, b in zip(inodes, again, strict=True))  # new files, renamed over


def test_the_launcher_names_the_paths_site_would_add_and_where_multinet_is() -> None:
    paths = install.site_paths(sys.executable)
    assert sysconfig.get_path("purelib") in paths
    assert str(Path(multinet.__file__).parent.parent) in paths + sys.path  # editable: the checkout
    bare = subprocess.run(
        [sys.executable, "-IS", "-c", "import sys, json; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not set(paths) & set(json.loads(bare))  # only what -S leaves out


def test_an_interpreter_without_multinet_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    python = shutil.which("python3", path="/usr/bin")
    assert python is not None
    if subprocess.run([python, "-I", "-c", "import multinet"], capture_output=True).returncode == 0:
        pytest.skip(f"{python} has multinet installed")
    with pytest.raises(ValueError, match=f"{python} -I cannot import multinet: .*No module"):
        install.install(str(tmp_path), python)
    assert os.listdir(tmp_path) == []


def test_a_launcher_whose_paths_no_longer_hold_answers_a_cni_error(tmp_path: Path) -> None:
    text = install.launcher_text(sys.executable, [str(tmp_path / "gone")], "multinet-ipam")
    launcher = tmp_path / "multinet-ipam"
    launcher.write_text(text)
    launcher.chmod(0o755)
    out = subprocess.run(
        [str(launcher)], env={"CNI_COMMAND": "VERSION"}, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 1
    error = json.loads(out.stdout)
    assert error["code"] == 5
    assert error["msg"].startswith(f"cannot import multinet with the paths of {launcher}")
    assert "install-shim again" in error["details"]
    assert out.stderr == ""


# -- multinetctl install (the init container's step) into a temporary host root ------


def _plan(tmp_path: Path, **kw: str) -> install.Plan:
    sa = tmp_path / "sa"
    sa.mkdir(exist_ok=True)
    (sa / "ca.crt").write_text("CA\n")
    runtime = tmp_path / "image" / "opt" / "multinet" / "0.1.0"
    (runtime / "bin").mkdir(parents=True, exist_ok=True)
    (runtime / "bin" / "python3").write_text("py")
    thin = tmp_path / "thin.conflist"
    thin.write_text('{"cniVersion": "1.0.0", "name": "m", "plugins": [{"type": "multinet"}]}')
    (tmp_path / "host").mkdir(exist_ok=True)
    defaults = {
        "host_root": str(tmp_path / "host"),
        "python": sys.executable,  # the image's, at the same path in the init container
        "runtime_src": str(runtime),
        "runtime_dest": "/opt/multinet/0.1.0",
        "token_file": install.projected_token_path("/var/lib/kubelet", "uid-1", "multinet-token"),
        "service_account_dir": str(sa),
        "api_server": "https://10.96.0.1:443",
        "thin_config": str(thin),
    }
    return install.Plan(**{**defaults, **kw})  # type: ignore[arg-type]


def test_install_node_twice(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    first = install.install_node(plan)
    host = tmp_path / "host"
    assert (host / "opt/multinet/0.1.0/bin/python3").read_text() == "py"
    kubeconfig = json.loads((host / "etc/cni/net.d/multinet.d/multinet.kubeconfig").read_text())
    user = kubeconfig["users"][0]["user"]
    token = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~projected/multinet-token/token"
    assert user == {"tokenFile": token}
    assert kubeconfig["clusters"][0]["cluster"] == {
        "server": "https://10.96.0.1:443",
        "certificate-authority": "/etc/cni/net.d/multinet.d/ca.crt",
    }
    conf = json.loads((host / "etc/cni/net.d/00-multinet.conflist").read_text())
    assert conf["kubeconfig"] == "/etc/cni/net.d/multinet.d/multinet.kubeconfig"
    assert (host / "opt/cni/bin/multinet").read_text().startswith(f"#!{sys.executable} -IS\n")
    second = install.install_node(plan)
    assert set(second) == set(first) - {str(host / "opt/multinet/0.1.0")}  # tree kept
    assert sorted(os.listdir(host / "opt/cni/bin")) == EXECUTABLES
    removed = install.uninstall_node(plan)
    assert {str(host / "opt/cni/bin" / name) for name in EXECUTABLES} <= set(removed)
    assert os.listdir(host / "opt/cni/bin") == []
    assert (host / "opt/multinet/0.1.0").is_dir()  # left: running shims may use it


def test_api_server_from_the_service_environment() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    assert install.api_server_from_env(env) == "https://[fd00::1]:6443"
    with pytest.raises(ValueError, match="KUBERNETES_SERVICE_HOST"):
        install.api_server_from_env({})


def test_upgrade_while_a_shim_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(tmp_path, thin_config="", token_file="")
    install.install_node(plan)
    shim = tmp_path / "host/opt/cni/bin/multinet-shim"
    # A shim in the middle of a call: it waits for its stdin (the netconf).
    proc = subprocess.Popen(
        [str(shim)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"CNI_COMMAND": "VERSION"},
    )  # fmt: skip
    try:
        old = os.stat(f"/proc/{proc.pid}/exe").st_ino
        new_build = tmp_path / "new-shim"
        new_build.write_bytes(Path("/bin/true").read_bytes())  # another ELF: "version 2"
        monkeypatch.setattr(install, "native_shim", lambda: str(new_build))
        install.install_node(_plan(tmp_path, thin_config="", token_file="",
                                   runtime_dest="/opt/multinet/0.2.0"))  # fmt: skip
        assert shim.read_bytes() == new_build.read_bytes()
        assert shim.stat().st_ino != old
        assert os.stat(f"/proc/{proc.pid}/exe").st_ino == old  # it keeps its file
        assert proc.poll() is None
        out, _ = proc.communicate(b'{"cniVersion": "1.0.0"}', timeout=30)
        assert b"supportedVersions" in out or b"cniVersion" in out  # it answered
        assert (tmp_path / "host/opt/multinet/0.1.0").is_dir()
        assert (tmp_path / "host/opt/multinet/0.2.0").is_dir()
    finally:
        proc.kill()
        proc.wait()


def test_a_shim_executed_in_a_loop_while_two_installers_replace_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """multus-cni #1221: a copy that opens the installed binary for writing fails with
    "Text file busy" while a CNI call runs it, or a call execs a half-written file. Here
    the installed file is exec'd without pause while two installers at once replace it
    with one build, then another (different sizes): every exec runs a complete binary,
    every install succeeds, and no temporary file is left."""
    bin_dir = tmp_path / "bin"
    true = Path("/bin/true").read_bytes()
    builds = [tmp_path / "v1", tmp_path / "v2"]
    builds[0].write_bytes(true)
    builds[1].write_bytes(true + b"\0" * (8 << 20))  # an ELF runs with bytes after it
    which = iter(range(1 << 30))
    monkeypatch.setattr(install, "native_shim", lambda: str(builds[next(which) % 2]))
    monkeypatch.setattr(install, "launchers", lambda python: {"multinet": b"#!/bin/sh\nexit 0\n"})
    install.install(str(bin_dir), sys.executable)
    shim = str(bin_dir / "multinet-shim")

    stop = threading.Event()
    failures: list[str] = []
    runs = [0]

    def exec_loop() -> None:
        while not stop.is_set():
            try:
                code = subprocess.run([shim], check=False, timeout=30).returncode
            except OSError as e:  # ETXTBSY, ENOEXEC...
                failures.append(f"exec: {e}")
                continue
            runs[0] += 1
            if code != 0:
                failures.append(f"exit status {code}")

    def installer() -> None:
        for _ in range(15):
            try:
                install.install(str(bin_dir), sys.executable)
            except OSError as e:
                failures.append(f"install: {e}")

    runner = threading.Thread(target=exec_loop)
    runner.start()
    installers = [threading.Thread(target=installer) for _ in range(2)]
    try:
        for t in installers:
            t.start()
        for t in installers:
            t.join(120)
    finally:
        stop.set()
        runner.join(60)
    assert failures == []
    assert runs[0] > 0
    assert sorted(os.listdir(bin_dir)) == ["multinet", "multinet-shim"]
    assert Path(shim).read_bytes() in (builds[0].read_bytes(), builds[1].read_bytes())


def test_two_installers_copy_the_same_runtime_tree_at_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    for n in range(200):
        (src / "lib" / f"m{n}.py").write_text("x" * 4096)
    dest = tmp_path / "host/opt/multinet/0.2.0"
    results: list[bool | str] = []

    def copy() -> None:
        try:
            results.append(install.copy_tree_atomic(str(src), str(dest)))
        except OSError as e:
            results.append(f"{e}")

    threads = [threading.Thread(target=copy) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert True in results and all(isinstance(r, bool) for r in results), results
    assert len(os.listdir(dest / "lib")) == 200
    assert os.listdir(dest.parent) == ["0.2.0"]  # no hidden copy left


def test_a_plugin_launcher_executed_in_a_loop_while_two_installers_replace_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the plugins' launchers: `multinet-ipam` answers VERSION in a loop while
    two installers at once replace it with one real launcher, then another (a longer one):
    every exec runs a complete launcher, every install succeeds, no temporary is left."""
    bin_dir = tmp_path / "bin"
    real = install.launchers(sys.executable)
    padded = {name: text + b"#" * (1 << 20) + b"\n" for name, text in real.items()}
    which = iter(range(1 << 30))
    monkeypatch.setattr(install, "launchers", lambda python: (real, padded)[next(which) % 2])
    install.install(str(bin_dir), sys.executable)
    ipam = str(bin_dir / "multinet-ipam")

    stop = threading.Event()
    failures: list[str] = []
    runs = [0]

    def exec_loop() -> None:
        while not stop.is_set():
            try:
                answer = _version(ipam)
            except (OSError, subprocess.SubprocessError, ValueError) as e:
                failures.append(f"exec: {e}")
                continue
            runs[0] += 1
            if answer.get("cniVersion") != "1.1.0":
                failures.append(f"answered {answer}")

    def installer() -> None:
        for n in range(200):
            if n >= 15 and runs[0] >= 5:
                return
            try:
                install.install(str(bin_dir), sys.executable)
            except OSError as e:
                failures.append(f"install: {e}")

    runner = threading.Thread(target=exec_loop)
    runner.start()
    installers = [threading.Thread(target=installer) for _ in range(2)]
    try:
        for t in installers:
            t.start()
        for t in installers:
            t.join(120)
    finally:
        stop.set()
        runner.join(60)
    assert failures == []
    assert runs[0] >= 5
    assert sorted(os.listdir(bin_dir)) == EXECUTABLES
    assert Path(ipam).read_bytes() in (real["multinet-ipam"], padded["multinet-ipam"])
