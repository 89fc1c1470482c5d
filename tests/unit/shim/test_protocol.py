"""The shim protocol (multinet.shim.protocol) and the client's reading of answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multinet.shim import client, protocol


@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2.5, true, null, "\\u00e9"], "b": {"c": -1e3}}', "  [] ", '"x"', "NaN"],
)
def test_shim_json_decoder_agrees_with_json(text: str) -> None:
    got, want = protocol.loads(text), json.loads(text)
    assert got == want or (got != got and want != want)  # NaN


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "[1,]"])
def test_shim_json_decoder_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        protocol.loads(text)


def test_shim_request_encoding_round_trips_any_bytes() -> None:
    env = {"CNI_ARGS": 'K8S_POD_NAME=a;X="q"\\', "UNICODE": "é\n"}
    stdin = b'{"cniVersion": "1.0.0", "raw": "\xff\xfe"}'
    data = json.loads(protocol.encode_request(env, stdin))
    assert data["env"] == env
    assert data["stdin"].encode("utf-8", "surrogateescape") == stdin


def test_shim_finds_the_socket_path() -> None:
    assert protocol.socket_path(b'{"daemonSocketPath": "/x.sock"}') == "/x.sock"
    assert protocol.socket_path(b'{"daemonSocketPath": 3}') == protocol.DEFAULT_SOCKET
    assert protocol.socket_path(b"not json") == protocol.DEFAULT_SOCKET
    assert protocol.socket_path(b"") == protocol.DEFAULT_SOCKET


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"SSH-2.0-OpenSSH\r\n\r\n",
    ],
)
def test_shim_treats_incomplete_answers_as_no_answer(answer: bytes) -> None:
    with pytest.raises(client.DaemonUnavailable):
        client._parse_answer(answer)


def test_shim_without_a_socket_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(client.DaemonUnavailable, match="cannot connect"):
        client.call_daemon(str(tmp_path / "none.sock"), {}, b"{}")


def test_answers_round_trip_any_text() -> None:
    for code, stdout in [(0, ""), (1, '{"code": 7, "msg": "é \udcff"}\n'), (255, "x" * 70000)]:
        assert protocol.decode_answer(protocol.encode_answer(code, stdout)) == (code, stdout)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"code": "0", "stdout": ""}',
        b'{"code": true, "stdout": ""}',
        b"\xff",
        b"[" * 100000,
    ],
)
def test_answers_of_another_shape_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_answer(body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"env": {"A": 1}, "stdin": ""}', "'env'"),
        (b'{"env": {}, "stdin": 3}', "'stdin'"),
        (b'{"env": {}, "stdin": "\\ud800"}', "not bytes"),
        (b'{"env": ' + b"[" * 100000, "nested too deep"),
        (b'{"env": {"A": "\\ud800"}, "stdin": ""}', "not an environment variable"),
        (b'{"env": {"": "1"}, "stdin": ""}', "not an environment variable"),
        (b'{"env": {"A=B": "1"}, "stdin": ""}', "not an environment variable"),
        (b'{"env": {"A": "a\\u0000"}, "stdin": ""}', "not an environment variable"),
    ],
)
def test_requests_of_another_shape_are_protocol_errors(body: bytes, problem: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=problem):
        protocol.decode_request(body)


def test_requests_round_trip() -> None:
    env, stdin = {"CNI_COMMAND": "ADD", "X": "\udcfe"}, b'{"raw": "\xff"}'
    assert protocol.decode_request(protocol.encode_request(env, stdin)) == (env, stdin)


@pytest.mark.parametrize(
    "stdin",
    [
        b"[" * 100000,
        b'{"daemonSocketPath": ' + b"[" * 100000,
        b'{"daemonSocketPath": "/run/a\\u0000b"}',
        b'{"daemonSocketPath": "/run/\\ud800"}',
    ],
)
def test_socket_path_of_deeply_nested_or_unusable_stdin_is_the_default(stdin: bytes) -> None:
    assert protocol.socket_path(stdin) == protocol.DEFAULT_SOCKET


def test_the_native_shim_speaks_the_versions_multinet_does() -> None:
    """Its own error JSON answers in one of them (shim/src/main.rs ACCEPTED)."""
    import re

    from multinet.cni.version import ACCEPTED

    source = (Path(__file__).parents[3] / "shim" / "src" / "main.rs").read_text()
    found = re.search(r"const ACCEPTED: \[&\[u8\]; \d+\] = \[(.*?)\];", source, re.S)
    assert found is not None
    assert tuple(re.findall(r'b"([0-9.]+)"', found.group(1))) == ACCEPTED
