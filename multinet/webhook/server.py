"""The webhook's HTTPS server: POST /validate (AdmissionReview v1), GET /healthz.

The serving certificate is re-read when its file changes (cert-manager renews it in place),
so a renewal needs no restart."""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from multinet.webhook.review import BadReview, Options, review

log = logging.getLogger("multinet.webhook")
MAX_BODY = 8 * 1024 * 1024  # the API server's own limit for an object is ~3 MiB


class CertReloader:
    def __init__(self, cert: str, key: str) -> None:
        self.cert, self.key = cert, key
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp = self._mtime()
        self.context.load_cert_chain(cert, key)

    def _mtime(self) -> tuple[float, float]:
        return os.stat(self.cert).st_mtime, os.stat(self.key).st_mtime

    def maybe_reload(self) -> None:
        try:
            stamp = self._mtime()
            if stamp != self._stamp:
                self.context.load_cert_chain(self.cert, self.key)
                self._stamp = stamp
                log.info("reloaded the serving certificate %s", self.cert)
        except (OSError, ssl.SSLError) as e:  # half-written: the next look will do
            log.warning("cannot reload the serving certificate: %s", e)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path in ("/healthz", "/readyz"):
            self._send(200, b"ok\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/validate":
            self._send(404, b"not found\n", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, b"Content-Length required\n", "text/plain")
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, b"request too large\n", "text/plain")
            return
        try:
            answer = review(json.loads(self.rfile.read(length)), self.server.options)
        except (ValueError, BadReview) as e:  # JSONDecodeError is a ValueError
            self._send(400, json.dumps({"error": str(e)}).encode())
            return
        allowed = answer["response"]["allowed"]
        log.info("uid %s: %s", answer["response"]["uid"], "allowed" if allowed else "denied")
        self._send(200, json.dumps(answer).encode())


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], certs: CertReloader, options: Options) -> None:
        super().__init__(address, _Handler)
        self.certs, self.options = certs, options
        self.socket = certs.context.wrap_socket(self.socket, server_side=True)

    def get_request(self) -> Any:
        self.certs.maybe_reload()
        return super().get_request()


def serve_in_thread(server: WebhookServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    return thread
