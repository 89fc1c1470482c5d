"""The socket: root only, and robust against whatever is written to it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys

import pytest

from multinet.shim import client as shim
from tests.integration.daemon.sandbox import Sandbox

NOBODY = 65534
# Run as nobody with Debian's interpreter (the test's may live under /root).
CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect-error", e.errno); sys.exit(0)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
print(data.split(b"\r\n")[0].decode())
"""


def _raw(path: str, data: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    return out


def _as_nobody(path: str) -> str:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("needs /usr/bin/python3 to run a client as nobody")
    proc = subprocess.run(
        [python, "-I", "-c", CLIENT, path],
        user=NOBODY,
        capture_output=True,
        text=True,
        timeout=20,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_socket_and_directory_permissions(sandbox: Sandbox) -> None:
    sandbox.daemon()
    st = os.stat(sandbox.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(sandbox.socket)).st_mode) == 0o700


def test_non_root_peer_is_refused(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    # The permissions alone keep nobody out...
    os.chmod(sandbox.run, 0o755)
    assert _as_nobody(sandbox.socket).startswith("connect-error 13")
    # ...and with them opened up, the daemon still refuses by peer credentials.
    os.chmod(os.path.dirname(sandbox.socket), 0o755)
    os.chmod(sandbox.socket, 0o666)
    assert _as_nobody(sandbox.socket) == "HTTP/1.1 403 Forbidden"
    assert 'multinet_rejected_requests_total{reason="peer"} 1' in d.get("/metrics")[1]
    assert d.get("/healthz") == (200, {"status": "ok"})  # root still served


MALFORMED = [
    (b"garbage\r\n\r\n", b"400"),
    (b"\x00\xff\xfe binary junk\r\n\r\n", b"400"),
    (b"POST /v1/cni HTTP/1.1\r\nHost: x\r\n\r\n", b"411"),
    (b"POST /v1/cni HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
    (b"POST /v1/cni HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}", b"400"),
    (b"POST /v1/cni HTTP/1.1\r\nContent-Length: 8\r\n\r\nnot json", b"400"),
    (b"POST /v1/cni HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]", b"400"),
    (b'POST /v1/cni HTTP/1.1\r\nContent-Length: 23\r\n\r\n{"env": 1, "stdin": ""}', b"400"),
    (b'POST /v1/cni HTTP/1.1\r\nContent-Length: 30\r\n\r\n{"env": {"A": 1}, "stdin": ""}', b"400"),
    (b'POST /v1/cni HTTP/1.1\r\nContent-Length: 24\r\n\r\n{"env": {}, "stdin": 42}', b"400"),
    (b"GET /nothing HTTP/1.1\r\n\r\n", b"404"),
    (b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405"),
]


def test_malformed_requests_are_rejected_and_the_daemon_keeps_serving(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    for data, status in MALFORMED:
        answer = _raw(sandbox.socket, data)
        assert answer.split(b"\r\n")[0].split(b" ")[1] == status, (data, answer)
        assert b"\r\n\r\n{" in answer, answer  # a JSON error body
    # A request cut off by its client is no problem either.
    s = socket.socket(socket.AF_UNIX)
    s.connect(sandbox.socket)
    s.sendall(b"POST /v1/cni HTTP/1.1\r\nContent-Length: 500\r\n\r\n{")
    s.close()
    version = json.dumps({"cniVersion": "1.0.0"}).encode()
    code, out = d.cni(sandbox.env("VERSION"), version)
    assert code == 0 and "supportedVersions" in json.loads(out)
    assert d.proc.poll() is None
    assert "Traceback" not in d.log()
    metrics = d.get("/metrics")[1]
    assert 'multinet_rejected_requests_total{reason="malformed"}' in metrics


def test_bad_cni_input_is_a_cni_error_not_a_protocol_error(sandbox: Sandbox) -> None:
    d = sandbox.daemon()
    code, out = d.cni({"CNI_COMMAND": "ADD"}, b"{not json")
    assert code == 1 and json.loads(out)["code"] == 6  # decode failure, as thin mode says
    code, out = d.cni({"CNI_COMMAND": "BOGUS"}, b"{}")
    assert code == 1 and json.loads(out)["code"] == 4
    # stdin that is not UTF-8 travels byte for byte.
    code, out = d.cni({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0", "x": "\xff"}')
    assert code == 1 and json.loads(out)["code"] == 6


def test_a_second_daemon_does_not_steal_a_live_socket(sandbox: Sandbox) -> None:
    sandbox.daemon()
    config = sandbox.tmp / "second.json"
    config.write_text(
        json.dumps({"daemonSocketPath": sandbox.socket, "cniConfigDir": "/nonexistent"})
    )
    proc = subprocess.run(
        ["python", "-m", "multinet.daemon.main", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "another daemon is serving" in proc.stderr
    assert shim.request(sandbox.socket, "GET", "/healthz", timeout=5)[0] == 200


def _post(body: bytes) -> bytes:
    return b"POST /v1/cni HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body


BAD_BODIES = [
    pytest.param(b'{"env": ' + b"[" * 100000, id="deeply-nested"),
    pytest.param(b'{"env": {"CNI_COMMAND": "\\ud800"}, "stdin": ""}', id="env-lone-surrogate"),
    pytest.param(b'{"env": {"A=B": "1"}, "stdin": ""}', id="env-name-with-equals"),
    pytest.param(b'{"env": {"A": "1\\u0000"}, "stdin": ""}', id="env-value-with-nul"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_deeply_nested_or_unencodable_request_body_is_a_400(sandbox: Sandbox, body: bytes) -> None:
    d = sandbox.daemon()
    answer = _raw(sandbox.socket, _post(body))
    assert answer.split(b"\r\n")[0].split(b" ")[1] == b"400", answer
    assert d.cni(sandbox.env("VERSION"), b'{"cniVersion": "1.0.0"}')[0] == 0  # still serving
    assert d.proc.poll() is None
    assert "Traceback" not in d.log()


@pytest.mark.parametrize(
    ("stdin", "problem"),
    [
        (b"[" * 100000, "nested deeper than 64 levels"),
        (b'{"cniVersion": "1.0.0", "mtu": NaN}', "NaN is not JSON"),
        (b'\xef\xbb\xbf{"cniVersion": "1.0.0"}', "byte order mark"),
    ],
)
def test_deeply_nested_or_non_standard_stdin_through_the_daemon_is_a_decode_failure(
    sandbox: Sandbox, stdin: bytes, problem: str
) -> None:
    d = sandbox.daemon()
    code, out = d.cni(sandbox.env("ADD", "c1", "/var/run/netns/none"), stdin)
    error = json.loads(out)
    assert code == 1 and error["code"] == 6
    assert problem in error["details"]
    assert "Traceback" not in d.log()


@pytest.mark.parametrize("with_daemon", [True, False], ids=["forwarded", "fallback"])
def test_shim_given_deeply_nested_stdin_reports_a_decode_failure(
    sandbox: Sandbox, with_daemon: bool
) -> None:
    if with_daemon:
        sandbox.daemon()
    proc = subprocess.run(
        [sandbox.shim_path],
        input=b"[" * 100000,
        env=sandbox.env("ADD", "c1", "/var/run/netns/none"),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["code"] == 6
    assert b"Traceback" not in proc.stdout + proc.stderr
    assert sandbox.journals() == []


def _start(sandbox: Sandbox, **keys: object) -> subprocess.CompletedProcess[str]:
    config = sandbox.tmp / "start.json"
    config.write_text(json.dumps({"cniConfigDir": str(sandbox.net_d), **keys}))
    return subprocess.run(
        [sys.executable, "-m", "multinet.daemon.main", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("mode", "owner", "problem"),
    [
        (0o770, 0, "writable by group or others (mode 0770)"),
        (0o1777, 0, "writable by group or others (mode 1777)"),
        (0o700, 65534, "owned by uid 65534"),
    ],
)
def test_socket_directory_that_is_not_ours_alone_is_refused_and_left_as_it_is(
    sandbox: Sandbox, mode: int, owner: int, problem: str
) -> None:
    directory = sandbox.run / "shared"
    directory.mkdir()
    os.chown(directory, owner, owner)
    directory.chmod(mode)
    proc = _start(sandbox, daemonSocketPath=str(directory / "m.sock"))
    assert proc.returncode == 1
    assert problem in proc.stderr and str(directory) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert stat.S_IMODE(directory.stat().st_mode) == mode  # never chmodded
    assert not (directory / "m.sock").exists()


def test_existing_socket_directory_of_ours_is_used_unchanged(sandbox: Sandbox) -> None:
    directory = sandbox.run / "s"
    directory.mkdir()
    directory.chmod(0o755)  # e.g. /run: ours, not writable by others
    sandbox.daemon()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert stat.S_IMODE(os.stat(sandbox.socket).st_mode) == 0o600


def test_unreadable_kubeconfig_is_one_line_on_stderr_not_a_traceback(sandbox: Sandbox) -> None:
    kubeconfig = sandbox.tmp / "kubeconfig"
    kubeconfig.write_text("{not: [a kubeconfig")
    proc = _start(sandbox, daemonSocketPath=sandbox.socket, kubeconfig=str(kubeconfig))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "level=error" in line]
    assert len(errors) == 1 and f"cannot load kubeconfig {kubeconfig}" in errors[0]
    assert not os.path.exists(sandbox.socket)
