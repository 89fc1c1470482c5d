"""HTTP/1.1 + JSON on the daemon's unix socket (CNI and control API) and the metrics port.

Unix socket (root only: a directory only root writes, socket 0600, SO_PEERCRED checked):
  POST /v1/cni          the shim protocol (multinet.shim.protocol)
  GET  /healthz         the daemon serves
  GET  /readyz          200 when ready, 503 with the reasons otherwise
  GET  /v1/attachments  the journal, as `multinetctl attachments` shows it
  GET  /metrics         Prometheus text
The TCP `metricsAddress` serves /metrics, /healthz and /readyz only.
Multus's socket (`socketDir`, opt-in; daemon.multus_api) serves Multus's shim:
  POST /cni             Multus's request, run as /v1/cni runs
  GET  /healthz, /readyz
  POST /delegate        the dynamic-networks controller's changes (daemon.delegate)

One thread per connection; the server joins them on close, so a graceful
shutdown finishes the requests in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import socketserver
import stat
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast

from multinet.cni.errors import IOFailure
from multinet.daemon import multus_api
from multinet.daemon.metrics import CONTENT_TYPE
from multinet.shim import protocol

log = logging.getLogger("multinet.daemon")

MAX_BODY = protocol.MAX_REQUEST
DRAIN_BYTES = 4 * MAX_BODY  # of a refused body, read and dropped before closing
DRAIN_SECONDS = 5.0
READ_TIMEOUT = 30.0  # for the request to arrive, not for the answer


class App(Protocol):
    """What the HTTP layer serves (implemented by lifecycle.Daemon)."""

    def cni(
        self, env: dict[str, str], stdin: bytes, client: socket.socket | None = None
    ) -> tuple[int, str]: ...

    def readiness(self) -> tuple[bool, list[str]]: ...

    def attachments(self) -> list[dict[str, Any]]: ...

    def metrics_text(self) -> str: ...

    def rejected(self, reason: str) -> None: ...

    def delegate(
        self,
        env: dict[str, str],
        stdin: bytes,
        attributes: dict[str, Any],
        client: socket.socket | None = None,
    ) -> tuple[int, str]: ...


class _AppServer(Protocol):
    app: App


class BadRequest(Exception):
    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def peer_gone(sock: socket.socket | None) -> bool:
    """Whether the client closed its end (a killed shim): its connection reads as EOF.
    Never waits: the handler's socket has a timeout, which a plain recv would wait out."""
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    events = poller.poll(0)
    if not events:
        return False  # nothing to read: still there, waiting for its answer
    if events[0][1] & (select.POLLHUP | select.POLLERR):
        return True
    try:  # readable: EOF (gone), or bytes it sent after its request (still there)
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError, TimeoutError):
        return False
    except OSError:
        return True  # reset


def parse_cni_body(body: bytes) -> tuple[dict[str, str], bytes]:
    try:
        return protocol.decode_request(body)
    except protocol.ProtocolError as e:
        raise BadRequest(400, str(e)) from None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # a garbage request line still gets a status line
    server_version = "multinetd"
    error_content_type = "application/json"
    error_message_format = '{"error": "%(message)s", "code": %(code)d}'
    timeout = READ_TIMEOUT
    control_routes: tuple[str, ...] = ("/healthz", "/readyz", "/metrics", "/v1/attachments")

    @property
    def app(self) -> App:
        return cast(_AppServer, self.server).app

    def do_GET(self) -> None:
        if self.path not in self.control_routes:
            self._json(404, {"error": f"no such path {self.path}"})
        elif self.path == "/healthz":
            self._json(200, {"status": "ok"})
        elif self.path == "/readyz":
            ready, reasons = self.app.readiness()
            self._json(200 if ready else 503, {"ready": ready, "reasons": reasons})
        elif self.path == "/metrics":
            self._send(200, self.app.metrics_text().encode(), CONTENT_TYPE)
        else:
            self._json(200, self.app.attachments())

    def do_POST(self) -> None:
        if self.path != protocol.CNI_ROUTE:
            status = 405 if self.path in self.control_routes else 404
            msg = f"no POST {self.path}: CNI requests go to {protocol.CNI_ROUTE}"
            self._json(status, {"error": msg})
            return
        try:
            env, stdin = parse_cni_body(self._body())
        except BadRequest as e:
            self.app.rejected("malformed")
            log.warning("rejected a malformed request: %s", e)
            self._json(e.status, {"error": str(e)})
            self._drain_refused(e.status)
            return
        code, stdout = self.app.cni(env, stdin, self.connection)
        self._send(200, protocol.encode_answer(code, stdout), "application/json")

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            raise BadRequest(411, "Content-Length is required")
        if int(length) > MAX_BODY:
            raise BadRequest(413, f"body larger than {MAX_BODY} bytes")
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            raise BadRequest(400, "body shorter than its Content-Length")
        return body

    def _drain_refused(self, status: int) -> None:
        """Read what the client still sends of a body refused as too large (bounded in
        bytes and time) before the connection closes: closing a unix socket with unread
        data resets it, and the client would lose the answer it has not read yet."""
        if status != 413:
            return  # the body was read whole
        self.wfile.flush()
        self.connection.settimeout(DRAIN_SECONDS)
        left = DRAIN_BYTES
        with contextlib.suppress(OSError):
            while left > 0 and (chunk := self.rfile.read1(min(left, 1 << 16))):
                left -= len(chunk)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%r -> %s", self.requestline, code)  # set even when parsing failed

    def log_error(self, format: str, *args: Any) -> None:
        # Called for unparseable HTTP and for read timeouts: both are malformed requests.
        self.app.rejected("malformed")
        log.warning("rejected a request: %s", format % args)


class UnixHandler(Handler):
    def parse_request(self) -> bool:
        # Refused after the request head is read, so that the client gets the answer
        # instead of a broken pipe while it is still writing.
        if not super().parse_request():
            return False
        uid = peer_uid(self.connection)
        if uid == 0:
            return True
        self.app.rejected("peer")
        log.warning("refused a request from uid %d: only root may call the daemon", uid)
        self._json(403, {"error": "only root may use the multinet socket"})
        return False


class MultusHandler(UnixHandler):
    """Multus's thick-plugin API (daemon.multus_api) on Multus's socket."""

    control_routes: tuple[str, ...] = ("/healthz", "/readyz")

    def do_POST(self) -> None:
        if self.path == "/healthz":  # Multus answers POST there too
            self._json(200, {"status": "ok"})
            return
        if self.path not in (multus_api.CNI_ROUTE, multus_api.DELEGATE_ROUTE):
            self._text(404, f"no POST {self.path}: Multus's shim posts to {multus_api.CNI_ROUTE}")
            return
        try:
            env, stdin, attributes = self._multus_request(self.path == multus_api.DELEGATE_ROUTE)
        except BadRequest as e:
            self.app.rejected("malformed")
            log.warning("rejected a malformed request on Multus's socket: %s", e)
            self._text(e.status, str(e))
            self._drain_refused(e.status)
            return
        if self.path == multus_api.DELEGATE_ROUTE:
            code, stdout = self.app.delegate(env, stdin, attributes, self.connection)
        else:
            code, stdout = self.app.cni(env, stdin, self.connection)
        status, body = multus_api.answer(env.get("CNI_COMMAND", ""), code, stdout)
        self._send(status, body, "application/json" if status == 200 else "text/plain")

    def _multus_request(self, delegate: bool) -> tuple[dict[str, str], bytes, dict[str, Any]]:
        body = self._body()
        try:
            if delegate:
                return multus_api.decode_delegate_request(body)
            return (*multus_api.decode_request(body), {})
        except multus_api.MalformedRequest as e:
            raise BadRequest(400, str(e)) from None

    def _text(self, status: int, text: str) -> None:
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8")


class MetricsHandler(Handler):
    control_routes: tuple[str, ...] = ("/healthz", "/readyz", "/metrics")

    def do_POST(self) -> None:
        self._json(404, {"error": "the metrics port serves GET /metrics, /healthz, /readyz"})


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = False  # server_close() waits for the requests in flight
    block_on_close = True
    request_queue_size = 256

    def __init__(self, path: str, app: App, handler: type[UnixHandler] = UnixHandler) -> None:
        self.app = app
        prepare_socket_dir(path)
        super().__init__(path, handler, bind_and_activate=False)
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self.server_bind()
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.server_activate()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.info("the client went away before its answer was sent")
        else:
            log.exception("error while serving a connection")


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, MetricsHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error while serving a metrics connection")


def check_socket_dir(directory: str) -> None:
    """The socket's directory: created 0700 when missing (then it is ours); an existing one
    is never changed (`/run` must not become 0700), but it must be owned by us and not
    writable by group or others (sticky or not: another user could replace the socket)."""
    try:
        os.makedirs(directory, mode=0o700)
        return
    except FileExistsError:
        pass
    except OSError as e:
        raise IOFailure(f"cannot create the socket directory {directory}", str(e)) from None
    try:
        st = os.stat(directory)
    except OSError as e:
        raise IOFailure(f"cannot read the socket directory {directory}", str(e)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise IOFailure(f"the socket directory {directory} is not a directory")
    if st.st_uid != os.geteuid():
        raise IOFailure(
            f"the socket directory {directory} is owned by uid {st.st_uid}, not by the "
            f"daemon (uid {os.geteuid()}): choose a directory of the daemon's own"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise IOFailure(
            f"the socket directory {directory} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}): use a directory only the daemon can write"
        )


def prepare_socket_dir(path: str) -> None:
    """The socket's directory checked (`check_socket_dir`); a stale socket is removed, a
    live one is an error."""
    directory = os.path.dirname(os.path.abspath(path))
    check_socket_dir(directory)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise IOFailure(f"cannot prepare the socket directory {directory}", str(e)) from None
    if not stat.S_ISSOCK(mode):
        raise IOFailure(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # nobody listens: left by a daemon that died
        return
    finally:
        probe.close()
    raise IOFailure(f"another daemon is serving on {path}")
