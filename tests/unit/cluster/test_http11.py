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


def serve_once(raw: bytes) -> tuple[http11.Connection, list[bytes]]:
    """A connection to a local server that answers one request with `raw`, then closes;
    the request it read is appended to the list."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def answer_one() -> None:
        conn, _ = listener.accept()
        with conn:
            received.append(conn.recv(65536))
            for i in range(0, len(raw), 7):  # in small pieces: lines span reads
                conn.sendall(raw[i : i + 7])
        listener.close()

    threading.Thread(target=answer_one, daemon=True).start()
    port = listener.getsockname()[1]
    return http11.Connection(
        "127.0.0.1", port, tls=None, connect_timeout=2, read_timeout=2
    ), received


def test_a_chunked_stream_is_read_line_by_line_across_chunks() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"a":\r\n9\r\n1}\n{"b":2\r\n6\r\n}\n\n{}\n\r\n0\r\n\r\n'
    )
    conn, received = serve_once(raw)
    stream = conn.stream("/watch?x=1", {"Accept": "application/json"})
    try:
        assert (stream.status, stream.reason) == (200, "OK")
        assert list(stream.lines()) == [b'{"a":1}', b'{"b":2}', b"{}"]
    finally:
        stream.close()
    assert received[0].startswith(b"GET /watch?x=1 HTTP/1.1\r\n")
    assert conn.sock is None


def test_a_stream_to_the_connections_end_and_an_unterminated_last_line() -> None:
    conn, _ = serve_once(b"HTTP/1.1 200 OK\r\n\r\none\ntwo")
    stream = conn.stream("/", {})
    assert list(stream.lines()) == [b"one", b"two"]
    stream.close()


def test_a_streams_error_body_is_read_whole() -> None:
    body = b'{"kind":"Status","code":410}'
    raw = b"HTTP/1.1 410 Gone\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    conn, _ = serve_once(raw)
    stream = conn.stream("/", {})
    assert (stream.status, stream.body()) == (410, body)
    stream.close()


def test_a_malformed_chunk_in_a_stream_is_a_protocol_error() -> None:
    conn, _ = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    stream = conn.stream("/", {})
    with pytest.raises(ProtocolError, match="malformed chunk size"):
        list(stream.lines())
    stream.close()
