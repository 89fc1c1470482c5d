"""The HTTP side of the fake kube-apiserver: TLS connections, auth, dispatch, watch streams."""

from __future__ import annotations

import hmac
import io
import json
import socket
import ssl
import struct
import sys
import threading
import traceback
import uuid
from collections.abc import Generator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from . import kubeapi_status as st
from .kubeapi_auth import Tokens
from .kubeapi_faults import Body, CutShort, Fault, Faults, Hang, Status, Truncated
from .kubeapi_patch import PATCH_TYPES, apply_patch
from .kubeapi_routes import VERSION, Route, discovery, resolve
from .kubeapi_select import Selector, parse_fields, parse_labels
from .kubeapi_status import KubeAPIError
from .kubeapi_store import Store

JSON = dict[str, Any]

_PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})


class Traffic:
    """The request log and the queue of injected faults, shared by all connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str]] = []
        self.faults = Faults()

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def add_fault(
        self, fault: Fault, times: int | None, path_contains: str = "", method: str = ""
    ) -> None:
        self.faults.add(fault, times, path_contains, method)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, consuming one use."""
        return self.faults.take(method, path)


class Backend(Protocol):
    """What the HTTP layer needs from the server object."""

    token: str
    tokens: Tokens
    store: Store
    traffic: Traffic
    watch_timeout: float
    bookmark_interval: float

    @property
    def address(self) -> str: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watch streams, as clients expect
    server: HTTPServer
    _tls_ok = True
    _streaming = False  # response headers are out: errors can only cut the connection

    def setup(self) -> None:
        # The handshake runs here, in the connection's thread, not in the accept loop.
        sock = self.request
        if not isinstance(sock, ssl.SSLSocket):  # plain HTTP
            return super().setup()
        try:
            sock.settimeout(10)
            sock.do_handshake()
            sock.settimeout(None)
        except OSError:
            self._tls_ok = False
        super().setup()

    def handle(self) -> None:
        if self._tls_ok:
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        # Like kube-apiserver: no Server header.
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # --- plumbing ---

    def _read_body(self) -> bytes:
        if length := self.headers.get("Content-Length"):
            return self.rfile.read(int(length))
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return b""
        data = b""
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            data += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return data

    def _headers(self, code: int, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)

    def _send(self, code: int, body: JSON | str, extra: dict[str, str] | None = None) -> None:
        if isinstance(body, str):
            data, ctype = body.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(body, separators=(",", ":")).encode(), "application/json"
        self._headers(code, ctype, extra)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Generator[JSON, None, None]) -> None:
        self._streaming = True
        self._headers(200, "application/json", {"Transfer-Encoding": "chunked"})
        self.end_headers()
        with closing(events):  # runs the generator's cleanup if the client goes away
            try:
                for event in events:
                    line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True

    def _serve(self) -> None:
        api = self.server.api
        target = unquote(self.path)
        api.traffic.record(self.command, target)
        body = self._read_body()
        path = urlsplit(self.path).path.rstrip("/") or "/"
        self._streaming = False
        try:
            self._authenticate(path)
            fault = api.traffic.take_fault(self.command, target)
            if isinstance(fault, Status):
                route = resolve(path)
                if route is None:
                    raise st.for_code(fault.code)
                raise st.for_code(
                    fault.code,
                    route.rt.group,
                    route.rt.plural,
                    route.name,
                    verb=_VERBS.get(self.command, self.command.lower()),
                    namespace=route.namespace or "",
                )
            if fault is not None:
                return self._misbehave(fault, path, body)
            self._route(path, body)
        except OSError:
            self.close_connection = True
        except Exception as e:
            if self._streaming:  # too late for a Status: cut the stream
                self.close_connection = True
            elif isinstance(e, KubeAPIError):
                self._send(e.code, e.status, e.headers)
            else:  # a bug in the fake: tell the test, answer like the real server
                traceback.print_exc(file=sys.stderr)
                err = st.internal("fake kube-apiserver failure")
                self._send(err.code, err.status)

    def _misbehave(self, fault: Fault, path: str, body: bytes) -> None:
        """Answer with an injected fault other than a Status (kubeapi_faults)."""
        self.close_connection = True
        if isinstance(fault, Hang):  # read, never answered; closed when the time is up
            self.server.api.traffic.faults.released.wait(fault.seconds)
            return
        if isinstance(fault, Body):
            self._headers(fault.status, fault.content_type)
            self.send_header("Content-Length", str(len(fault.body)))
            self.end_headers()
            self.wfile.write(fault.body)
            return
        head, payload = self._real_answer(path, body)
        if isinstance(fault, Truncated):  # well framed, its JSON cut in half
            part = payload[: len(payload) // 2]
            self._headers(200, "application/json")
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            self.wfile.write(part)
            return
        assert isinstance(fault, CutShort)
        self.wfile.write(head + payload[: len(payload) // 2])  # the head promises it all
        self.wfile.flush()
        if fault.reset:
            self.server.reset_on_close(self.request)

    def _real_answer(self, path: str, body: bytes) -> tuple[bytes, bytes]:
        """(head, body) of what the server would have answered (not a watch's)."""
        real, self.wfile = self.wfile, io.BytesIO()
        try:
            try:
                self._route(path, body)
            except KubeAPIError as e:
                self._send(e.code, e.status, e.headers)
            data = self.wfile.getvalue()  # type: ignore[attr-defined]
        finally:
            self.wfile = real
        head, sep, payload = data.partition(b"\r\n\r\n")
        return head + sep, payload

    def _authenticate(self, path: str) -> None:
        header = self.headers.get("Authorization")
        if header is None and path in _PUBLIC_PATHS:
            return  # anonymous access to the public endpoints
        if header is None and self._client_certificate():
            return  # x509 authentication: the handshake verified it against the client CA
        scheme, _, token = (header or "").partition(" ")
        token, api = token.strip(), self.server.api
        if scheme.lower() != "bearer" or not (
            hmac.compare_digest(token.encode(), api.token.encode()) or api.tokens.valid(token)
        ):
            raise st.unauthorized()

    def _client_certificate(self) -> bool:
        sock = self.request
        return isinstance(sock, ssl.SSLSocket) and bool(sock.getpeercert())

    def _route(self, path: str, raw: bytes) -> None:
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, "ok")
        if path == "/version":
            return self._send(200, VERSION)
        if self.command == "GET" and (doc := discovery(path, self.server.api.address)):
            return self._send(200, doc)
        route = resolve(path)
        if route is None:
            raise st.unknown_path()
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if route.name:
            self._item(route, query, raw)
        else:
            self._collection(route, query, raw)

    def _collection(self, route: Route, query: dict[str, str], raw: bytes) -> None:
        store, rt = self.server.api.store, route.rt
        if self.command == "GET" and query.get("watch") in _TRUE:
            return self._stream(self._watch(route, query))
        if self.command == "GET":
            sel = self._selector(route, query)
            limit, cont = self._int(query, "limit"), query.get("continue", "")
            return self._send(200, store.list_objects(rt, sel, limit, cont))
        if self.command == "POST" and route.namespace is not None:
            obj = store.create(rt, route.namespace, self._json(raw), dry_run=_dry_run(query))
            return self._send(201, obj)
        raise st.method_not_allowed()

    def _item(self, route: Route, query: dict[str, str], raw: bytes) -> None:
        store, rt, ns, name = self.server.api.store, route.rt, route.namespace or "", route.name
        dry_run, sub = _dry_run(query), route.subresource
        if self.command == "GET":
            return self._send(200, store.get(rt, ns, name))
        if self.command == "PUT":
            new = self._json(raw)
            # The body's UID is a precondition of a replace (a 409 when it differs).
            uid = str(new.get("metadata", {}).get("uid") or "") if isinstance(new, dict) else ""
            obj = store.update(
                rt, ns, name, lambda _: new, subresource=sub, uid_precondition=uid, dry_run=dry_run
            )
            return self._send(200, obj)
        if self.command == "PATCH":
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
            accepted = [t for t in PATCH_TYPES if rt.builtin or "strategic" not in t]
            if ctype not in accepted:  # custom resources have no strategic merge patch
                raise st.unsupported_media_type([*accepted, "application/apply-patch+yaml"])
            patch = self._json(raw)
            obj = store.update(
                rt,
                ns,
                name,
                lambda cur: apply_patch(ctype, cur, patch),
                subresource=sub,
                dry_run=dry_run,
            )
            return self._send(200, obj)
        if self.command == "DELETE" and not sub:
            opts = self._json(raw) if raw.strip() else {}
            if not isinstance(opts, dict):
                raise st.bad_request("DeleteOptions must be a JSON object")
            pre = opts.get("preconditions") or {}
            obj = store.delete(
                rt,
                ns,
                name,
                uid=pre.get("uid") or "",
                resource_version=pre.get("resourceVersion") or "",
                dry_run=dry_run or "All" in (opts.get("dryRun") or []),
            )
            return self._send(200, obj)
        raise st.method_not_allowed()

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw or b"null")
        except ValueError as e:
            raise st.bad_request(f"error decoding body: {e}") from None

    @staticmethod
    def _int(query: dict[str, str], key: str) -> int:
        try:
            return int(query.get(key) or 0)
        except ValueError:
            raise st.bad_request(f"{key}: invalid integer {query[key]!r}") from None

    @staticmethod
    def _selector(route: Route, query: dict[str, str]) -> Selector:
        rt = route.rt
        return Selector(
            labels=tuple(parse_labels(query.get("labelSelector", ""))),
            fields=tuple(
                parse_fields(query.get("fieldSelector", ""), rt.field_labels, rt.unsupported_field)
            ),
            field_labels=rt.field_labels,
            namespace=route.namespace,
        )

    def _watch(self, route: Route, query: dict[str, str]) -> Generator[JSON, None, None]:
        api = self.server.api
        rv = query.get("resourceVersion", "")
        if rv and not rv.isdigit():
            raise st.bad_request(f'resourceVersion: Invalid value: "{rv}": must be an integer')
        initial = query.get("sendInitialEvents") in _TRUE
        bookmarks = query.get("allowWatchBookmarks") in _TRUE
        if initial and (not bookmarks or query.get("resourceVersionMatch") != "NotOlderThan"):
            raise st.invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                [
                    st.field_forbidden(
                        "sendInitialEvents",
                        "requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
                    )
                ],
            )
        timeout = self._int(query, "timeoutSeconds") or api.watch_timeout
        return api.store.watch(
            route.rt,
            self._selector(route, query),
            rv,
            timeout=timeout,
            bookmark_interval=api.bookmark_interval if bookmarks else 0.0,
            send_initial_events=initial,
        )


_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _dry_run(query: dict[str, str]) -> bool:
    return query.get("dryRun") == "All"


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # set_down(False) binds the same port again

    def __init__(self, address: tuple[str, int], api: Backend, ctx: ssl.SSLContext | None) -> None:
        self.api = api
        self._ctx = ctx
        self._conns: set[socket.socket] = set()
        self._resets: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # As kube-apiserver (Go sets it on every TCP connection): without it, an answer
        # written as head then body on a kept-alive connection waits ~40 ms for the
        # client's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ctx is None:  # plain HTTP (as behind `kubectl proxy`)
            return sock, addr
        return self._ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def reset_on_close(self, request: socket.socket) -> None:
        """End this connection with an RST, not a FIN (SO_LINGER 0, no shutdown)."""
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._conns_lock:
            self._resets.add(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            self.close_request(request)  # no shutdown(SHUT_WR): its FIN would come first
            return
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:  # the plain-socket shutdown: a TCP FIN the client sees at once
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up are routine
            super().handle_error(request, client_address)
