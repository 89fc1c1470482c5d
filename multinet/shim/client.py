"""A client for the daemon's unix socket: just enough HTTP/1.1 for one exchange.

Used by the Python shim (one CNI request) and by `multinetctl daemon` (the control
API). Standard library C modules only, as the protocol module.
"""

try:
    import _socket as _sock
except ImportError:  # pragma: no cover
    import socket as _sock  # type: ignore[no-redef]

from multinet.shim import protocol


class DaemonUnavailable(Exception):
    """The daemon did not give a complete answer; the request may be run in-process."""


def request(
    path: str,
    method: str,
    target: str,
    body: bytes = b"",
    timeout: float | None = None,
) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange on the unix socket at `path`: (status, body).

    Raises DaemonUnavailable for anything short of a complete answer. `timeout`
    bounds the wait for the answer (None: as long as the daemon works on it).
    """
    sock = _sock.socket(_sock.AF_UNIX, _sock.SOCK_STREAM)
    try:
        try:
            sock.settimeout(protocol.CONNECT_TIMEOUT)
            sock.connect(path)
        except OSError as e:
            raise DaemonUnavailable(f"cannot connect to {path}: {e.strerror or e}") from None
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: multinetd\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            sock.settimeout(timeout)
            try:
                sock.sendall(head.encode("ascii") + body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon answered early (413: too large) and closed: read it
            chunks = []
            size = 0
            while size <= protocol.MAX_ANSWER:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as e:
            raise DaemonUnavailable(f"{path}: connection failed: {e.strerror or e}") from None
    finally:
        sock.close()
    return _parse_answer(b"".join(chunks))


def _parse_answer(data: bytes) -> tuple[int, bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise DaemonUnavailable("the daemon closed the connection without an answer")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise DaemonUnavailable(f"not an HTTP answer: {lines[0][:80]!r}")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            if not value.strip().isdigit() or int(value) != len(body):
                raise DaemonUnavailable("the daemon's answer was cut short")
    return int(parts[1]), body


def call_daemon(path: str, env: dict[str, str], stdin: bytes) -> tuple[int, str]:
    """Forward one CNI request: (exit code, stdout) as the daemon ran it."""
    status, body = request(path, "POST", protocol.CNI_ROUTE, protocol.encode_request(env, stdin))
    if status != 200:
        raise DaemonUnavailable(f"the daemon refused the request: HTTP {status} {body[:200]!r}")
    try:
        return protocol.decode_answer(body)
    except protocol.ProtocolError as e:
        raise DaemonUnavailable(str(e)) from None
