"""The native shim against fake daemons: answers pass through exactly, the request
is the Python shim's byte for byte, and every misbehaviour falls back."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as quote
from pathlib import Path

import pytest

from multinet.shim import protocol
from tests.integration.shim.shimkit import (
    HEAD,
    Answer,
    FakeDaemon,
    Recorder,
    assert_fell_back,
    base_env,
    http_answer,
    netconf,
    run,
)

MiB = 1 << 20


def spec_request(env: dict[str, str], stdin: bytes) -> bytes:
    """The body as docs/thick-mode.md specifies it."""
    pairs = ",".join(quote(k) + ":" + quote(v) for k, v in env.items())
    text = quote(stdin.decode("utf-8", "surrogateescape"))
    return ('{"env":{' + pairs + '},"stdin":' + text + "}").encode("ascii")


def python_request(env: dict[str, str], stdin: bytes) -> bytes:
    """What multinet.shim.protocol (the daemon's side of the protocol) writes."""
    body = protocol.encode_request(env, stdin)
    assert body == spec_request(env, stdin)
    return HEAD.format(len(body)).encode() + body


def answering(code: int, stdout: str) -> Answer:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(http_answer(json.dumps({"code": code, "stdout": stdout}).encode()))

    return answer


@pytest.mark.parametrize(
    ("code", "stdout", "exit_code", "written"),
    [
        (0, '{"cniVersion": "1.0.0"}\n', 0, b'{"cniVersion": "1.0.0"}\n'),
        (1, '{"code": 7, "msg": "é 😀"}', 1, '{"code": 7, "msg": "é 😀"}'.encode()),
        (100, "", 100, b""),
        (300, "x", 300 & 0xFF, b"x"),
        (-1, "raw \udcff\udc80 bytes", 255, b"raw \xff\x80 bytes"),
        (2**70 + 5, "big", 5, b"big"),
    ],
)
def test_the_answer_passes_through(
    shim_bin: Path,
    fake_daemon: Callable[..., FakeDaemon],
    code: int,
    stdout: str,
    exit_code: int,
    written: bytes,
) -> None:
    d = fake_daemon(answering(code, stdout))
    result = run([shim_bin], netconf(daemonSocketPath=str(d.path)), base_env())
    assert result.stderr == b""
    assert (result.returncode, result.stdout) == (exit_code, written)


def test_the_request_is_the_python_shims(
    shim_bin: Path, fake_daemon: Callable[..., FakeDaemon]
) -> None:
    d = fake_daemon(answering(0, ""))
    stdin = netconf(daemonSocketPath=str(d.path), pad='é😀"\\\n\t\x7f')[:-1] + b', "x": "\xe9\xff"}'
    env = base_env(
        "ADD",
        CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=p\udcff",  # a non-UTF-8 byte, surrogate-escaped
        WEIRD="=x=\udce9\x01",
    )
    env["NON\udcffUTF8"] = "v\udc80"
    result = run([shim_bin], stdin, env)
    assert result.returncode == 0, result.stderr
    assert d.requests == [python_request(env, stdin)]


def test_a_huge_env_and_stdin_still_reach_the_daemon(
    shim_bin: Path, fake_daemon: Callable[..., FakeDaemon]
) -> None:
    d = fake_daemon(answering(0, "ok"))
    stdin = netconf(daemonSocketPath=str(d.path), pad="a" * (8 * MiB))
    env = base_env(BIG="b" * 100_000)
    result = run([shim_bin], stdin, env)
    assert (result.returncode, result.stdout) == (0, b"ok"), result.stderr
    assert d.requests == [python_request(env, stdin)]


def _close(conn: socket.socket, request: bytes) -> None:
    conn.shutdown(socket.SHUT_RDWR)


def _half(conn: socket.socket, request: bytes) -> None:
    whole = http_answer(b'{"code": 0, "stdout": "complete"}')
    conn.sendall(whole[: len(whole) - 5])


def _half_head(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n")


def _garbage(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"\x00\xffnot http at all\r\n\r\n{}")


def _status(status: str) -> Answer:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(http_answer(b'{"code": 0, "stdout": "x"}', status))

    return answer


def _body(body: bytes) -> Answer:
    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(http_answer(body))

    return answer


def _huge(conn: socket.socket, request: bytes) -> None:
    body = b'{"code": 0, "stdout": "' + b"x" * (64 * MiB) + b'"}'
    conn.sendall(http_answer(body))


def _huge_without_length(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    chunk = b"x" * MiB
    for _ in range(64):
        conn.sendall(chunk)


def _huge_head(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(64):
        conn.sendall(b"X-Filler: " + b"y" * MiB + b"\r\n")


def _too_long(conn: socket.socket, request: bytes) -> None:
    conn.sendall(http_answer(b'{"code": 0, "stdout": "x"}')[:-1] + b' "x"}')


def _never(conn: socket.socket, request: bytes) -> None:
    time.sleep(3)


def _slowly(conn: socket.socket, request: bytes) -> None:
    for b in http_answer(b'{"code": 0, "stdout": "slow"}'):
        conn.sendall(bytes([b]))
        time.sleep(0.05)


MISBEHAVIOURS: dict[str, tuple[Answer, str]] = {
    "closes without answering": (_close, "closed the connection without an answer"),
    "closes mid-answer": (_half, "cut short"),
    "closes mid-head": (_half_head, "without an answer"),
    "answers garbage": (_garbage, "not an HTTP answer"),
    "answers 500": (_status("500 Internal Server Error"), "refused"),
    "answers 413": (_status("413 Payload Too Large"), "refused"),
    "answers 204": (_status("204 No Content"), "refused"),
    "answers not JSON": (_body(b"{nope"), "not {code, stdout}"),
    "answers not UTF-8": (_body(b'{"code": 0, "stdout": "\xff"}'), "not {code, stdout}"),
    "answers a list": (_body(b"[0, 1]"), "not {code, stdout}"),
    "answers without stdout": (_body(b'{"code": 0}'), "not {code, stdout}"),
    "answers a string code": (_body(b'{"code": "0", "stdout": ""}'), "not {code, stdout}"),
    "answers a float code": (_body(b'{"code": 0.0, "stdout": ""}'), "not {code, stdout}"),
    "answers a bool code": (_body(b'{"code": true, "stdout": ""}'), "not {code, stdout}"),
    "answers a list stdout": (_body(b'{"code": 0, "stdout": []}'), "not {code, stdout}"),
    "answers two documents": (_body(b'{"code": 0, "stdout": ""} {}'), "not {code, stdout}"),
    "answers 64 MiB": (_huge, "larger than 16 MiB"),
    "answers 64 MiB without Content-Length": (_huge_without_length, "no Content-Length"),
    "answers a 64 MiB head": (_huge_head, "head is too long"),
    "answers past its Content-Length": (_too_long, "longer than its Content-Length"),
    "never answers": (_never, "no answer within 1 s"),
    "answers slowly past the timeout": (_slowly, "no answer within 1 s"),
}


@pytest.mark.parametrize("name", list(MISBEHAVIOURS))
def test_a_misbehaving_daemon_means_fallback(
    shim_bin: Path,
    fake_daemon: Callable[..., FakeDaemon],
    recorder: Recorder,
    name: str,
) -> None:
    answer, reason = MISBEHAVIOURS[name]
    d = fake_daemon(answer)
    stdin = netconf(
        daemonSocketPath=str(d.path), daemonTimeout=1, fallbackExecutable=str(recorder.path)
    )
    env = base_env("DEL")
    started = time.monotonic()
    result = run([shim_bin], stdin, env)
    assert time.monotonic() - started < 2.5
    assert_fell_back(result, recorder, "DEL")
    assert reason in result.stderr.decode(), result.stderr
    assert len(d.requests) == 1
    assert recorder.stdin() == stdin


def test_a_daemon_that_accepts_nothing_means_fallback_after_2_s(
    shim_bin: Path, fake_daemon: Callable[..., FakeDaemon], recorder: Recorder
) -> None:
    d = fake_daemon(_close, accept=False)
    stdin = netconf(daemonSocketPath=str(d.path), fallbackExecutable=str(recorder.path))
    started = time.monotonic()
    result = run([shim_bin], stdin, base_env("ADD"))
    took = time.monotonic() - started
    assert_fell_back(result, recorder, "ADD")
    assert "not accepted within 2 s" in result.stderr.decode()
    assert 1.9 < took < 4, took


def test_a_refused_connection_means_fallback(
    shim_bin: Path, workdir: Path, recorder: Recorder
) -> None:
    path = workdir / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # bound, never listening: a stale socket file
    s.close()
    stdin = netconf(daemonSocketPath=str(path), fallbackExecutable=str(recorder.path))
    result = run([shim_bin], stdin, base_env("CHECK"))
    assert_fell_back(result, recorder, "CHECK")
    assert "Connection refused" in result.stderr.decode()


@pytest.mark.parametrize("timeout", [0, -1, 3601, "1", None, True])
def test_an_invalid_daemon_timeout_is_the_default(
    shim_bin: Path, fake_daemon: Callable[..., FakeDaemon], timeout: object
) -> None:
    d = fake_daemon(answering(0, "ok"))
    stdin = netconf(daemonSocketPath=str(d.path), daemonTimeout=timeout)
    result = run([shim_bin], stdin, base_env())
    assert (result.returncode, result.stdout) == (0, b"ok")
