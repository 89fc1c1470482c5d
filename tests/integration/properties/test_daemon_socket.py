"""Surface 6: the daemon's socket. `decode_request` (unit level) raises ProtocolError or
returns (env of str, stdin bytes); a real multinetd answers every body POSTed to it with an
HTTP status (and a 200's answer holds one CNI reply) and stays healthy."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from multinet.shim import client as shim
from multinet.shim import protocol
from tests.integration.daemon.sandbox import DaemonProc, Sandbox
from tests.integration.properties import strategies as s
from tests.integration.properties.harness import check_reply, prop

VALID_ENV = {
    "CNI_COMMAND": "VERSION",
    "CNI_CONTAINERID": "c1",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/usr/lib/cni",
}
VALID_STDIN = (
    '{"cniVersion": "1.0.0", "name": "n", "type": "multinet", "delegates": [{"type": "bridge"}]}'
)
STATUS_STDIN = json.dumps(
    {"cniVersion": "1.1.0", "name": "n", "type": "multinet", "clusterNetwork": "missing"}
)
BODY_TEMPLATE: dict[str, Any] = {"env": VALID_ENV, "stdin": VALID_STDIN}
# Commands that do no kernel work in the daemon with this body: no netns is named.
SAFE_COMMANDS = ("VERSION", "STATUS", "GC", "CHECK", "DEL", "ADD", "", "BOGUS")


def bodies() -> st.SearchStrategy[bytes]:
    docs = s.documents(
        s.mutations(
            BODY_TEMPLATE,
            extra_keys=("env", "stdin", "CNI_NETNS"),
            special=[(("env", "CNI_COMMAND"), st.sampled_from(SAFE_COMMANDS))],
            file_names=frozenset(),
        )
    )
    return st.one_of(docs.map(lambda d: d.render(BODY_TEMPLATE)), s.garbage())


PINNED = [
    b"[" * s.DEEP,
    b'{"env": {}, "stdin": "\\ud800"}',
    b'{"env": {"CNI_COMMAND": "\\ud800"}, "stdin": ""}',
    b'{"env": {"CNI_COMMAND": "VERSION"}, "stdin": "[' + b"[" * 5000 + b'"}',
    json.dumps({"env": {"CNI_COMMAND": "STATUS"}, "stdin": STATUS_STDIN}).encode(),
    b"\xef\xbb\xbf{}",
    b'{"env": {"a": NaN}, "stdin": 1e400}',
]


@prop(ci=300, body=(bodies(), PINNED))
def test_decode_request(body: bytes) -> None:
    try:
        env, stdin = protocol.decode_request(body)
    except protocol.ProtocolError:
        return
    assert isinstance(env, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    )
    assert isinstance(stdin, bytes)


# -- a real multinetd ------------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProc]:
    box = Sandbox(tmp_path)
    try:
        yield box.daemon(generateConfig=False, cniDir=str(box.state))
    finally:
        box.close()


class NoAnswer(AssertionError):
    pass


def post(path: str, body: bytes) -> tuple[int, bytes]:
    try:
        return shim.request(path, "POST", protocol.CNI_ROUTE, body, timeout=60)
    except shim.DaemonUnavailable as e:
        raise NoAnswer(f"no HTTP answer: {e}") from None


@pytest.mark.root
@prop(ci=60, body=(bodies(), PINNED))
def test_daemon_answers_every_body(daemon: DaemonProc, body: bytes) -> None:
    status, answer = post(daemon.socket, body)
    assert 200 <= status < 600, status
    if status == 200:
        code, stdout = protocol.decode_answer(answer)
        check_reply(code, stdout, "")
    else:
        assert 400 <= status < 500, f"{status} {answer[:300]!r}"
    assert shim.request(daemon.socket, "GET", "/healthz", timeout=10)[0] == 200
    assert daemon.proc.poll() is None, "multinetd exited"


@pytest.mark.root
def test_daemon_survives_broken_connections(daemon: DaemonProc) -> None:
    """Connections that end early or send no HTTP at all: the daemon stays healthy."""
    for raw in (
        b"",
        b"\x00" * 100,
        b"POST /v1/cni HTTP/1.1\r\nContent-Length: 100\r\n\r\n{",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"POST /v1/cni HTTP/1.1\r\n\r\n",
    ):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(daemon.socket)
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            try:
                sock.recv(65536)
            except OSError:
                pass
    assert shim.request(daemon.socket, "GET", "/healthz", timeout=10)[0] == 200
