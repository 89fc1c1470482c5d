"""The minimal HTTP/1.1 client's answer parsing: every framing the API server uses, and
every malformed or oversized answer a ProtocolError."""

from __future__ import annotations

import io

import pytest

from multinet.cluster import http11
from multinet.cluster.http11 import ProtocolError, host_header, read_response


def answer(raw: bytes, method: str = "GET") -> http11.Response:
    return read_response(io.BytesIO(raw), method)


def test_content_length_and_keep_alive() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}next"
    r = answer(raw)
    assert (r.status, r.reason, r.body, r.will_close) == (200, "OK", b"{}", False)
    assert r.headers["content-type"] == "application/json"


def test_chunked_with_extensions_and_trailer() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    assert answer(raw).body == b"abcde"


def test_no_length_reads_to_the_end_and_closes() -> None:
    r = answer(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    assert (r.body, r.will_close) == (b"all of it", True)


@pytest.mark.parametrize(
    ("head", "closes"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n", True),
        (b"HTTP/1.0 200 OK\r\n", True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n", False),
        (b"HTTP/1.1 200 OK\r\n", False),
    ],
)
def test_will_close(head: bytes, closes: bool) -> None:
    assert answer(head + b"Content-Length: 0\r\n\r\n").will_close is closes


def test_interim_answers_are_skipped_and_bodyless_statuses() -> None:
    r = answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert (r.status, r.body) == (204, b"")


def test_repeated_headers_are_joined() -> None:
    r = answer(b"HTTP/1.1 200 OK\r\nWarning: a\r\nwarning: b\r\nContent-Length: 0\r\n\r\n")
    assert r.headers["warning"] == "a, b"


def test_error_statuses_keep_their_body() -> None:
    r = answer(b'HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 4\r\n\r\n{"a"')
    assert (r.status, r.reason, r.body) == (422, "Unprocessable Entity", b'{"a"')


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # closed without answering
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * http11.MAX_LINE + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (http11.MAX_HEADERS + 1) + b"\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" * (http11.MAX_INTERIM + 1),
    ],
)
def test_malformed_answers(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        answer(raw)


def test_oversized_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http11, "MAX_BODY", 4)
    for raw in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12345",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n12345",
    ):
        with pytest.raises(ProtocolError, match="larger than 4 bytes"):
            answer(raw)


@pytest.mark.parametrize(
    ("host", "port", "default", "header"),
    [
        ("10.0.0.1", 443, 443, "10.0.0.1"),
        ("api.example", 6443, 443, "api.example:6443"),
        ("::1", 6443, 443, "[::1]:6443"),
        ("localhost", 80, 80, "localhost"),
    ],
)
def test_host_header(host: str, port: int, default: int, header: str) -> None:
    assert host_header(host, port, default) == header
