"""A minimal HTTP/1.1 client connection for `cluster.rest`: requests with a JSON body,
answers by Content-Length, chunked or to the connection's end, kept alive.

Thin mode pays for every module it imports on every ADD: `http.client` pulls in the
`email` package, `calendar` and `locale` (~11 ms here, more than the requests it sends;
docs/performance.md). This is the part of it the API server needs, with bounds on
everything read: a status line or header line longer than `MAX_LINE`, more than
`MAX_HEADERS` headers or a body larger than `MAX_BODY` is a `ProtocolError`, as is any
answer that is not HTTP/1.x. Transport failures are the socket's and ssl's OSErrors.

A kept-alive connection the server closed while idle (its idle timeout, a load
balancer's, a restart) fails the next request before any byte of an answer arrives:
that request is sent once more on a new connection, as Go's net/http and urllib3 do
(`Connection.request`). The server cannot have answered it, and a close of an idle
connection happens before it reads the request; the one case left (a server that read
it, then died before answering) is the one every transport error has already:
`api.ApiCluster` retries those for every method, and multinet's writes are idempotent
in effect (a merge patch that sets the status annotation; an Event under a new name).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

if TYPE_CHECKING:
    import ssl

MAX_LINE = 65536  # as http.client
MAX_HEADERS = 100  # as http.client
MAX_BODY = 64 << 20  # an API object is far smaller; the API server's limit is 3 MiB
MAX_INTERIM = 10  # 1xx answers skipped before the final one
NO_ANSWER = "the server closed the connection without answering"


class ProtocolError(Exception):
    """The server's answer is not one this client reads (or the connection was cut)."""


class LineTooLong(ProtocolError):
    """A line of a stream (a watch event) longer than the caller's bound."""


# What a kept-alive connection the server closed while idle raises, before any byte of
# an answer: the request is sent again on a new connection.
_CLOSED_IDLE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Response:
    """One answer. A plain class: a dataclass costs ~0.5 ms to create (thin mode's start)."""

    __slots__ = ("body", "headers", "reason", "status", "will_close")

    def __init__(
        self, status: int, reason: str, headers: dict[str, str], body: bytes, will_close: bool
    ) -> None:
        self.status, self.reason, self.body = status, reason, body
        self.headers = headers  # names in lower case; repeated headers joined with ", "
        self.will_close = will_close  # the server closes the connection after this answer


def host_header(host: str, port: int, default_port: int) -> str:
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return name if port == default_port else f"{name}:{port}"


class Connection:
    """One connection to `host:port`, opened on the first request (TLS when `tls` is
    given), reopened after the server closed it. `connect_timeout` bounds the connect and
    the TLS handshake, `read_timeout` each read and write after that."""

    def __init__(
        self,
        host: str,
        port: int | None,
        *,
        tls: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        default = 443 if tls is not None else 80
        self.host, self.port = host, port or default
        self.tls = tls
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.host_header = host_header(host, self.port, default)
        self.sock: socket.socket | None = None
        self._file: BinaryIO | None = None
        self.idle_since = 0.0  # time.monotonic() of the last answer read to its end

    def dropped(self) -> bool:
        """True when this idle connection is not worth a request: closed, or readable
        (the server closed it, or sent what nobody asked for)."""
        if self.sock is None:
            return True
        pending = getattr(self.sock, "pending", None)  # TLS records already decrypted
        if pending is not None and pending():
            return True
        poll = select.poll()
        poll.register(self.sock, select.POLLIN)
        return bool(poll.poll(0))

    def connect(self) -> None:
        # An ASCII name as bytes: getaddrinfo and ssl would otherwise load the idna codec
        # (unicodedata, stringprep, ~2 ms) to encode it; any other name goes through it.
        name = self.host.encode() if self.host.isascii() else self.host
        address = (name, self.port)  # getaddrinfo takes bytes; typeshed says str only
        sock = socket.create_connection(address, timeout=self.connect_timeout)  # type: ignore[arg-type]
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=name)
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        self.sock, self._file = sock, sock.makefile("rb")

    def close(self) -> None:
        file, sock, self._file, self.sock = self._file, self.sock, None, None
        if file is not None:
            file.close()
        if sock is not None:
            sock.close()

    def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None = None
    ) -> Response:
        """Send one request and read its answer to the end (the connection stays open
        unless the answer says otherwise: see `Response.will_close`). On a kept-alive
        connection the server closed before answering, sent again on a new one."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        reused = self.sock is not None
        try:
            self._send(data)
        except (*_CLOSED_IDLE, ProtocolError):
            if not reused:
                raise
            self.close()  # closed while idle: the request never reached a live server
            self._send(data)
        assert self._file is not None
        response = read_response(self._file, method)
        self.idle_since = time.monotonic()
        return response

    def _send(self, data: bytes) -> None:
        """Send a request and wait for the first byte of its answer: a ProtocolError
        (NO_ANSWER) or one of _CLOSED_IDLE when the server closed the connection first."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None and self._file is not None
        self.sock.sendall(data)
        if not self._file.peek(1):  # type: ignore[attr-defined]  # a BufferedReader
            raise ProtocolError(NO_ANSWER)

    def stream(self, target: str, headers: dict[str, str]) -> Stream:
        """GET `target` and read only the answer's head: the body is read as it comes
        (`Stream.lines`, a watch). The stream owns the connection from then on."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None and self._file is not None
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        _, status, reason, headers = _final_head(self._file)
        return Stream(self, self._file, status, reason, headers)


class Stream:
    """An answer whose body is read as it comes: a watch's JSON lines."""

    def __init__(
        self, conn: Connection, f: BinaryIO, status: int, reason: str, headers: dict[str, str]
    ) -> None:
        self.conn, self._file = conn, f
        self.status, self.reason, self.headers = status, reason, headers
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()

    def body(self) -> bytes:
        """The whole body (an error's Status), bounded by MAX_BODY."""
        if self.chunked:
            return _chunked(self._file)
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) <= MAX_BODY:
            return _exactly(self._file, int(length))
        return self._file.read(MAX_BODY)

    def lines(self, max_line: int = MAX_BODY) -> Iterator[bytes]:
        """The body's non-empty lines as they arrive; a line longer than `max_line` is
        LineTooLong. Ends when the server ends the body."""
        buf = bytearray()  # appended in place: a line may come in many chunks
        for chunk in self._chunks():
            buf += chunk
            start = 0  # each line found by index: one split per line would copy the rest
            while (end := buf.find(b"\n", start)) >= 0:
                if end - start > max_line:
                    raise LineTooLong(f"a line larger than {max_line} bytes")
                line = bytes(buf[start:end])
                start = end + 1
                if line.strip():
                    yield line
            del buf[:start]
            if len(buf) > max_line:
                raise LineTooLong(f"a line larger than {max_line} bytes")
        if buf.strip():
            yield bytes(buf)

    def _chunks(self) -> Iterator[bytes]:
        if not self.chunked:
            while data := self._file.read1(65536):  # type: ignore[attr-defined]
                yield data
            return
        while True:
            size_field = _line(self._file).split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise ProtocolError(f"malformed chunk size {size_field[:20]!r}") from None
            if size < 0 or size > MAX_BODY:
                raise ProtocolError(f"a chunk larger than {MAX_BODY} bytes")
            if size == 0:
                return
            while size:  # in pieces: a line's bound holds inside a large chunk too
                piece = _exactly(self._file, min(size, 65536))
                size -= len(piece)
                yield piece
            if _line(self._file) not in (b"\r\n", b"\n"):
                raise ProtocolError("a chunk does not end with CRLF")

    def close(self) -> None:
        self.conn.close()


def _line(f: BinaryIO) -> bytes:
    line = f.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError("line too long in the answer")
    return line


def _status(f: BinaryIO) -> tuple[str, int, str]:
    line = _line(f)
    if not line:
        raise ProtocolError(NO_ANSWER)
    try:
        version, code, *reason = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        status = int(code)
    except ValueError:
        raise ProtocolError(f"not an HTTP status line: {line[:100]!r}") from None
    if not version.startswith("HTTP/1.") or not 100 <= status <= 999:
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:100]!r}")
    return version, status, reason[0] if reason else ""


def _headers(f: BinaryIO) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = _line(f)
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError(f"malformed header line: {line[:100]!r}")
        key, value = name.strip().lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raise ProtocolError(f"more than {MAX_HEADERS} headers in the answer")


def _exactly(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ProtocolError(f"answer cut short: {len(data)} of {n} bytes")
    return data


def _chunked(f: BinaryIO) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_field = _line(f).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise ProtocolError(f"malformed chunk size {size_field[:20]!r}") from None
        if size < 0 or total + size > MAX_BODY:
            raise ProtocolError(f"answer larger than {MAX_BODY} bytes")
        if size == 0:
            _headers(f)  # the trailer, if any, up to the blank line
            return b"".join(chunks)
        chunks.append(_exactly(f, size))
        total += size
        if _line(f) not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk does not end with CRLF")


def _final_head(f: BinaryIO) -> tuple[str, int, str, dict[str, str]]:
    """(version, status, reason, headers) of the answer, past any interim (1xx) ones."""
    for _ in range(MAX_INTERIM):
        version, status, reason = _status(f)
        headers = _headers(f)
        if not 100 <= status <= 199:
            return version, status, reason, headers
    raise ProtocolError(f"more than {MAX_INTERIM} interim (1xx) answers")


def read_response(f: BinaryIO, method: str) -> Response:
    version, status, reason, headers = _final_head(f)
    connection = headers.get("connection", "").lower()
    will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    if method == "HEAD" or status in (204, 304):
        return Response(status, reason, headers, b"", will_close)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, reason, headers, _chunked(f), will_close)
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ProtocolError(f"malformed Content-Length {length[:20]!r}")
        if int(length) > MAX_BODY:
            raise ProtocolError(f"answer larger than {MAX_BODY} bytes")
        return Response(status, reason, headers, _exactly(f, int(length)), will_close)
    body = f.read(MAX_BODY + 1)  # no length: the body ends with the connection
    if len(body) > MAX_BODY:
        raise ProtocolError(f"answer larger than {MAX_BODY} bytes")
    return Response(status, reason, headers, body, True)
