"""Finding a delegate by `type` and running it: the plugin's answer mapped to our errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from multinet.cni.errors import (
    DELEGATE_FAILED,
    DelegateError,
    InvalidConfig,
    IOFailure,
    PluginNotFound,
)
from multinet.cni.exec import Invocation, check_type, find_plugin, invoke
from multinet.cni.version import SUPPORTED

CONFIG = {"cniVersion": "1.0.0", "name": "net1", "type": "fake"}


def write_exe(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def python_plugin(path: Path, body: str) -> Path:
    """An executable Python script; `body` runs after json/os/sys are imported."""
    return write_exe(path, f"#!{sys.executable}\nimport json, os, sys, time\n{body}\n")


def inv(bin_dir: Path, **kw: Any) -> Invocation:
    return Invocation(
        container_id="ctr1",
        netns="/var/run/netns/ns1",
        ifname="net1",
        args="IgnoreUnknown=1",
        path=(str(bin_dir),),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        **kw,
    )


# -- check_type ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bridge", "host-local", "sriov", "a.b", "...", "macvlan_2"])
def test_check_type_accepts_file_names(name: str) -> None:
    assert check_type(name) == name


@pytest.mark.parametrize(
    "bad", ["/usr/lib/cni/bridge", "../bridge", "a/b", "bridge/", ".", "..", "a\x00b"]
)
def test_check_type_rejects_paths(bad: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        check_type(bad)
    assert e.value.code == 7
    assert e.value.msg == (
        f"plugin type {bad!r} is invalid: it must be a file name "
        "found in binDir or CNI_PATH, not a path"
    )


@pytest.mark.parametrize(
    ("bad", "shown"),
    [("", '""'), (None, "null"), (1, "1"), (True, "true"), ([], "[]"), ({"a": 1}, '{"a": 1}')],
)
def test_check_type_rejects_empty_and_non_strings(bad: object, shown: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        check_type(bad)
    assert e.value.code == 7
    assert e.value.msg == f"plugin type must be a non-empty string, got {shown}"


# -- find_plugin ---------------------------------------------------------------------------


def test_find_plugin_first_directory_wins(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_exe(a / "bridge", "#!/bin/sh\n")
    write_exe(b / "bridge", "#!/bin/sh\n")
    assert find_plugin("bridge", [str(a), str(b)]) == str(a / "bridge")
    assert find_plugin("bridge", [str(b), str(a)]) == str(b / "bridge")


def test_find_plugin_skips_non_executables_and_directories(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    write_exe(a / "bridge", "#!/bin/sh\n", mode=0o644)
    (b / "bridge").mkdir()
    write_exe(c / "bridge", "#!/bin/sh\n")
    dirs = [str(tmp_path / "missing"), str(a), str(b), str(c)]
    assert find_plugin("bridge", dirs) == str(c / "bridge")


def test_find_plugin_follows_symlinks(tmp_path: Path) -> None:
    real = write_exe(tmp_path / "real-bridge", "#!/bin/sh\n")
    d = tmp_path / "bin"
    d.mkdir()
    (d / "bridge").symlink_to(real)
    assert find_plugin("bridge", [str(d)]) == str(d / "bridge")


def test_plugin_not_found(tmp_path: Path) -> None:
    write_exe(tmp_path / "other", "#!/bin/sh\n")
    write_exe(tmp_path / "bridge", "#!/bin/sh\n", mode=0o600)
    dirs = [str(tmp_path), "/nonexistent"]
    with pytest.raises(PluginNotFound) as e:
        find_plugin("bridge", dirs)
    assert isinstance(e.value, InvalidConfig)
    assert e.value.code == 7
    assert e.value.msg == "plugin type 'bridge' not found"
    assert e.value.details == f"searched {dirs!r}"
    with pytest.raises(PluginNotFound):
        find_plugin("bridge", [])


def test_find_plugin_checks_the_type_first(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    write_exe(sub / "evil", "#!/bin/sh\n")
    with pytest.raises(InvalidConfig) as e:
        find_plugin("sub/evil", [str(tmp_path)])
    assert not isinstance(e.value, PluginNotFound)
    with pytest.raises(InvalidConfig):
        find_plugin("../sub/evil", [str(sub)])


# -- Invocation ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "GC", "STATUS"])
def test_environ_replaces_every_cni_variable(command: str) -> None:
    i = Invocation(
        container_id="ctr1",
        netns="/var/run/netns/ns1",
        ifname="net2",
        args="K8S_POD_NAME=web",
        path=("/opt/cni/bin", "/usr/lib/cni"),
        env={
            "PATH": "/usr/bin",
            "CNI_COMMAND": "VERSION",
            "CNI_IFNAME": "eth0",
            "CNI_STRAY": "x",
            "HOME": "/root",
        },
    )
    assert i.environ(command) == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": "ctr1",
        "CNI_NETNS": "/var/run/netns/ns1",
        "CNI_IFNAME": "net2",
        "CNI_ARGS": "K8S_POD_NAME=web",
        "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
    }


# -- invoke ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
def test_invoke_passes_config_and_environment(tmp_path: Path, version: str) -> None:
    python_plugin(
        tmp_path / "fake",
        "conf = json.load(sys.stdin)\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('CNI_')}\n"
        "print(json.dumps({'cniVersion': conf['cniVersion'], 'got': conf, 'env': env}))",
    )
    config = {**CONFIG, "cniVersion": version, "unknown": {"nested": [1, 2]}}
    out = invoke("fake", "ADD", config, inv(tmp_path))
    assert out == {
        "cniVersion": version,
        "got": config,
        "env": {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "ctr1",
            "CNI_NETNS": "/var/run/netns/ns1",
            "CNI_IFNAME": "net1",
            "CNI_ARGS": "IgnoreUnknown=1",
            "CNI_PATH": str(tmp_path),
        },
    }


@pytest.mark.parametrize("printed", ["", "\n", "  \n\t"])
def test_invoke_returns_none_when_the_plugin_prints_nothing(tmp_path: Path, printed: str) -> None:
    python_plugin(tmp_path / "fake", f"sys.stdout.write({printed!r})")
    assert invoke("fake", "DEL", CONFIG, inv(tmp_path)) is None


def test_a_plugins_internal_error_999_is_a_delegate_failure(tmp_path: Path) -> None:
    """999 from multinet means a bug in multinet; a Go plugin answers it for most failures."""
    err = {"cniVersion": "1.0.0", "code": 999, "msg": "no IP ranges specified"}
    python_plugin(tmp_path / "fake", f"print(json.dumps({err!r}))\nsys.exit(1)")
    with pytest.raises(DelegateError) as e:
        invoke("fake", "ADD", CONFIG, inv(tmp_path))
    assert (e.value.code, e.value.msg) == (100, "fake ADD failed: no IP ranges specified")
    assert e.value.details == "the plugin answered code 999"


@pytest.mark.parametrize("code", [1, 3, 4, 7, 11, 50, 51, 123])
def test_plugin_error_json_keeps_the_plugin_code(tmp_path: Path, code: int) -> None:
    err = {"cniVersion": "1.0.0", "code": code, "msg": "no such link", "details": "eth9"}
    python_plugin(tmp_path / "fake", f"print(json.dumps({err!r}))\nsys.exit(1)")
    with pytest.raises(DelegateError) as e:
        invoke("fake", "ADD", CONFIG, inv(tmp_path))
    assert e.value.code == code
    assert e.value.msg == "fake ADD failed: no such link"
    assert e.value.details == "eth9"


def test_plugin_error_without_details(tmp_path: Path) -> None:
    python_plugin(tmp_path / "fake", "print(json.dumps({'code': 11, 'msg': 'busy'}))\nsys.exit(2)")
    with pytest.raises(DelegateError) as e:
        invoke("fake", "CHECK", CONFIG, inv(tmp_path))
    assert (e.value.code, e.value.msg, e.value.details) == (11, "fake CHECK failed: busy", "")


@pytest.mark.parametrize(
    ("stdout", "details"),
    [
        ("panic: runtime error", "output is not a CNI error: 'panic: runtime error'"),
        ('{"msg": "no code"}', 'output is not a CNI error: \'{"msg": "no code"}\''),
        ('{"code": "7", "msg": "str code"}', None),
        ('{"code": 7}', None),
        ("[1, 2]", "output is not a CNI error: '[1, 2]'"),
        ("", "no output"),
        ("   \n", "no output"),
    ],
)
def test_failure_without_a_cni_error_is_a_generic_delegate_error(
    tmp_path: Path, stdout: str, details: str | None
) -> None:
    python_plugin(tmp_path / "fake", f"sys.stdout.write({stdout!r})\nsys.exit(3)")
    with pytest.raises(DelegateError) as e:
        invoke("fake", "DEL", CONFIG, inv(tmp_path))
    assert e.value.code == DELEGATE_FAILED == 100
    assert e.value.msg == "fake DEL failed with exit status 3"
    if details is not None:
        assert e.value.details == details
    else:
        assert e.value.details.startswith("output is not a CNI error: ")


def test_killed_plugin_reports_the_signal(tmp_path: Path) -> None:
    python_plugin(tmp_path / "fake", "import signal\nos.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(DelegateError) as e:
        invoke("fake", "ADD", CONFIG, inv(tmp_path))
    assert e.value.msg == "fake ADD failed with exit status -9"
    assert e.value.details == "no output"


@pytest.mark.parametrize(
    ("stdout", "msg"),
    [
        ("this is not json", "fake ADD printed invalid JSON"),
        ('{"cniVersion": "1.0.0",', "fake ADD printed invalid JSON"),
        ("[1, 2]", "fake ADD printed list, not an object"),
        ('"text"', "fake ADD printed str, not an object"),
        ("null", "fake ADD printed NoneType, not an object"),
        ("42", "fake ADD printed int, not an object"),
    ],
)
def test_bad_output_on_success(tmp_path: Path, stdout: str, msg: str) -> None:
    python_plugin(tmp_path / "fake", f"sys.stdout.write({stdout!r})")
    with pytest.raises(DelegateError) as e:
        invoke("fake", "ADD", CONFIG, inv(tmp_path))
    assert e.value.code == 100
    assert e.value.msg == msg


def test_invalid_utf8_output_is_invalid_json(tmp_path: Path) -> None:
    python_plugin(tmp_path / "fake", "sys.stdout.buffer.write(b'\\xff\\xfe{}')")
    with pytest.raises(DelegateError) as e:
        invoke("fake", "ADD", CONFIG, inv(tmp_path))
    assert e.value.msg == "fake ADD printed invalid JSON"


def test_timeout_kills_the_plugin(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    python_plugin(
        tmp_path / "sleeper",
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)",
    )
    start = time.monotonic()
    with pytest.raises(IOFailure) as e:
        invoke("sleeper", "ADD", CONFIG, inv(tmp_path, timeout=0.5))
    elapsed = time.monotonic() - start
    assert e.value.code == 5
    assert e.value.msg == "sleeper ADD timed out after 0.5s"
    assert 0.5 <= elapsed < 5
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


def test_unrunnable_plugin_is_an_io_failure(tmp_path: Path) -> None:
    write_exe(tmp_path / "broken", "#!/nonexistent/interpreter\n")
    with pytest.raises(IOFailure) as e:
        invoke("broken", "ADD", CONFIG, inv(tmp_path))
    assert e.value.code == 5
    assert e.value.msg == "broken ADD could not be run"
    assert "No such file or directory" in e.value.details


def test_missing_plugin_is_plugin_not_found(tmp_path: Path) -> None:
    with pytest.raises(PluginNotFound):
        invoke("ghost", "ADD", CONFIG, inv(tmp_path))


def test_stderr_passes_through_and_stdout_does_not(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    python_plugin(
        tmp_path / "chatty",
        "sys.stderr.write('chatty: hello from the delegate\\n')\n"
        "print(json.dumps({'cniVersion': '1.0.0'}))",
    )
    assert invoke("chatty", "ADD", CONFIG, inv(tmp_path)) == {"cniVersion": "1.0.0"}
    captured = capfd.readouterr()
    assert captured.err == "chatty: hello from the delegate\n"
    assert captured.out == ""


def test_shell_script_plugin(tmp_path: Path) -> None:
    write_exe(
        tmp_path / "shplug",
        '#!/bin/sh\ncat >/dev/null\nprintf \'{"cniVersion":"0.4.0","cmd":"%s"}\' "$CNI_COMMAND"\n',
    )
    assert invoke("shplug", "CHECK", CONFIG, inv(tmp_path)) == {
        "cniVersion": "0.4.0",
        "cmd": "CHECK",
    }


# -- the pipe exchange ---------------------------------------------------------------------


def test_stdin_larger_than_the_pipe_buffer_arrives_whole(tmp_path: Path) -> None:
    # A config with a big prevResult: written in PIPE_BUF slices as the plugin reads.
    big = {**CONFIG, "prevResult": {"blob": "x" * 300_000}}
    python_plugin(
        tmp_path / "echo",
        "n = len(json.load(sys.stdin)['prevResult']['blob'])\n"
        "print(json.dumps({'cniVersion': '1.0.0', 'dns': {}, 'n': n}))",
    )
    out = invoke("echo", "ADD", big, inv(tmp_path, timeout=10))
    assert out is not None and out["n"] == 300_000


def test_a_plugin_that_never_reads_stdin_still_times_out(tmp_path: Path) -> None:
    python_plugin(tmp_path / "deaf", "time.sleep(30)")
    big = {**CONFIG, "prevResult": {"blob": "x" * 300_000}}  # fills the pipe: we must not block
    started = time.monotonic()
    with pytest.raises(IOFailure, match=r"deaf ADD timed out after 0\.5s"):
        invoke("deaf", "ADD", big, inv(tmp_path, timeout=0.5))
    assert time.monotonic() - started < 5


def test_a_plugin_that_closes_stdout_but_lingers_times_out(tmp_path: Path) -> None:
    # The reap, not the read, is what waits here.
    python_plugin(tmp_path / "linger", "os.close(1)\ntime.sleep(30)")
    started = time.monotonic()
    with pytest.raises(IOFailure, match=r"linger ADD timed out after 0\.5s"):
        invoke("linger", "ADD", CONFIG, inv(tmp_path, timeout=0.5))
    assert time.monotonic() - started < 5


def _libs(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [p for p in re.findall(r"(/\S+)", out) if os.path.exists(p)]


def test_delegates_run_chrooted_into_the_host_root(tmp_path: Path) -> None:
    """hostRoot: the plugin is found under the root and runs inside it, seeing its files."""
    root = tmp_path / "hostroot"
    for f in ["/bin/sh", "/bin/cat", *_libs("/bin/sh"), *_libs("/bin/cat")]:
        real = os.path.realpath(f)
        dest = root / f.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.copy2(real, dest)
    (root / "run/flannel").mkdir(parents=True)
    (root / "run/flannel/subnet.env").write_text("FLANNEL_SUBNET=10.244.1.1/24\n")
    plugin = root / "opt/cni/bin/flannel-like"
    plugin.parent.mkdir(parents=True)
    plugin.write_text(
        "#!/bin/sh\ncat > /dev/null\n"
        'echo "{\\"cniVersion\\": \\"1.0.0\\", \\"dns\\": '
        '{\\"domain\\": \\"$(cat /run/flannel/subnet.env)\\"}}"\n'
    )
    plugin.chmod(0o755)
    inv = Invocation("c1", "/var/run/netns/x", "eth0", path=("/opt/cni/bin",), root=str(root))
    out = invoke("flannel-like", "ADD", {"cniVersion": "1.0.0", "name": "n"}, inv)
    assert out == {"cniVersion": "1.0.0", "dns": {"domain": "FLANNEL_SUBNET=10.244.1.1/24"}}
    with pytest.raises(PluginNotFound, match="not found"):
        invoke("flannel-like", "ADD", {}, Invocation("c1", "", "eth0", path=("/opt/cni/bin",)))
