"""The socket: root only, and robust against whatever is written to it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess

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
