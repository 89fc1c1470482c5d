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


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def keep_alive_server(second: str) -> tuple[http11.Connection, list[bytes], list[int]]:
    """A server that answers the first request on its first connection, then, for the
    second request: `idle` closes the connection while it is idle, `read` reads it and
    closes without answering, `reset` resets the connection, `cut` sends half a status
    line and closes. Every later connection is answered. The list of requests read, and
    a one-element count of the connections accepted, are returned with the client."""
    import socket
    import struct
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    accepted = [0]

    def serve() -> None:
        first, _ = listener.accept()
        accepted[0] += 1
        received.append(first.recv(65536))
        first.sendall(OK)
        if second == "idle":
            first.close()  # before the client sends again
        else:
            received.append(first.recv(65536))
            if second == "reset":  # SO_LINGER 0: an RST, not a FIN
                first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif second == "cut":
                first.sendall(b"HTTP/1.1 2")
            first.close()
        listener.settimeout(2)
        try:
            while True:
                conn, _ = listener.accept()
                accepted[0] += 1
                with conn:
                    received.append(conn.recv(65536))
                    conn.sendall(OK)
        except OSError:
            listener.close()

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    client = http11.Connection("127.0.0.1", port, tls=None, connect_timeout=2, read_timeout=2)
    return client, received, accepted


@pytest.mark.parametrize("second", ["idle", "read", "reset"])
def test_a_request_on_a_kept_alive_connection_the_server_closed_goes_on_a_new_one(
    second: str,
) -> None:
    import time

    conn, received, accepted = keep_alive_server(second)
    try:
        assert conn.request("GET", "/a", {}).status == 200
        time.sleep(0.2)  # the server's close (idle) reaches us first
        assert conn.request("PATCH", "/b", {}, b"{}").status == 200
    finally:
        conn.close()
    assert accepted == [2]
    assert received[-1].startswith(b"PATCH /b HTTP/1.1\r\n")


def test_a_new_connection_closed_without_answer_is_not_sent_again() -> None:
    conn, received = serve_once(b"")
    with pytest.raises(ProtocolError, match=http11.NO_ANSWER):
        conn.request("GET", "/", {})
    assert len(received) == 1


def test_an_answer_cut_short_is_not_sent_again() -> None:
    conn, _, accepted = keep_alive_server("cut")
    try:
        assert conn.request("GET", "/a", {}).status == 200
        with pytest.raises(ProtocolError):
            conn.request("PATCH", "/b", {}, b"{}")  # it may have been applied: not resent
    finally:
        conn.close()
    assert accepted == [1]


def test_an_idle_connection_the_server_closed_is_dropped() -> None:
    import time

    live, _, _ = keep_alive_server("read")
    closed, _, _ = keep_alive_server("idle")
    try:
        assert live.request("GET", "/", {}).status == 200
        assert closed.request("GET", "/", {}).status == 200
        time.sleep(0.2)
        assert (live.dropped(), closed.dropped()) == (False, True)
    finally:
        live.close()
        closed.close()
    assert live.dropped()  # closed by us


def chunked(*chunks: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"


def test_a_stream_line_longer_than_the_bound_is_line_too_long() -> None:
    conn, _ = serve_once(chunked(b"short\n", b"x" * 50, b"x" * 50 + b"\n"))
    stream = conn.stream("/", {})
    lines = stream.lines(max_line=64)
    assert next(lines) == b"short"
    with pytest.raises(http11.LineTooLong, match="larger than 64 bytes"):
        next(lines)
    stream.close()


def test_many_lines_in_one_large_chunk_are_split_in_linear_time() -> None:
    import time

    body = b"0123456\n" * (1 << 18)  # 2 MiB of lines: a split per line copied the rest
    conn, _ = serve_once(chunked(body))
    stream = conn.stream("/", {})
    start = time.monotonic()
    count = sum(1 for _ in stream.lines())
    stream.close()
    assert count == 1 << 18
    assert time.monotonic() - start < 5
