"""multinet-shim: the thick-mode CNI executable; forwards each call to multinetd.

It runs once per pod sandbox, so its hot path imports only C modules of the
standard library (`_json`, `_socket`): `json` and `socket` pull in `re`, `enum`
and `selectors`, which cost more than the whole interpreter start (see
docs/performance.md). It speaks just enough HTTP/1.1 to POST one request over
the daemon's unix socket and read the answer.

When the daemon does not answer (no socket, refused, the connection dropped,
an answer that is not a complete 200), the shim runs the request in-process
with the thin engine (`multinet.entry`) instead of failing. That is safe for
every command, including an ADD that the daemon died in the middle of: the
journal and its per-(container, ifname) lock make the retry roll back whatever
the dead daemon had half-attached before adding again.

On the host it runs from a launcher (`multinet.daemon.launcher`) as
`python -IS`: nothing but this module and the standard library is imported
until it falls back.

No `from __future__ import annotations` here: it imports the `__future__` module,
~0.3 ms of every call (the annotations below are valid at run time in 3.11).
"""

import sys
from posix import _exit
from posix import environ as _environ  # os.environ without importing os (~2 ms)

try:  # C accelerators: no `re`/`enum` import (the pure modules are the fallback)
    from _json import encode_basestring_ascii as _quote
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - CPython always has them
    from json.encoder import encode_basestring_ascii as _quote
    from json.scanner import make_scanner as _make_scanner
try:
    import _socket as _sock
except ImportError:  # pragma: no cover
    import socket as _sock  # type: ignore[no-redef]

DEFAULT_SOCKET = "/run/multinet/multinet.sock"
CNI_PATH = "/v1/cni"
CONNECT_TIMEOUT = 2.0  # a live daemon accepts at once; longer means it is wedged
MAX_ANSWER = 64 << 20


class DaemonUnavailable(Exception):
    """The daemon did not give a complete answer; the request may be run in-process."""


class _Context:
    """What `_json.make_scanner` reads off `json.JSONDecoder`, without importing it."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float


_scan = _make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed JSONDecoder


def loads(text: str) -> object:
    """json.loads for one JSON document; ValueError when it is not one."""
    start = len(text) - len(text.lstrip())
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    if text[end:].strip():
        raise ValueError("extra data after the JSON document")
    return value


def encode_request(env: dict[str, str], stdin: bytes) -> bytes:
    """{"env": {...}, "stdin": "..."}; stdin bytes that are not UTF-8 survive as
    surrogate escapes (the daemon encodes them back with 'surrogateescape')."""
    pairs = ",".join(_quote(k) + ":" + _quote(v) for k, v in env.items())
    text = _quote(stdin.decode("utf-8", "surrogateescape"))
    return ('{"env":{' + pairs + '},"stdin":' + text + "}").encode("ascii")


def socket_path(stdin: bytes) -> str:
    """`daemonSocketPath` of the stdin netconf; the default when absent or unreadable."""
    try:
        conf = loads(stdin.decode("utf-8", "surrogateescape"))
    except ValueError:
        return DEFAULT_SOCKET  # the daemon (or the fallback) reports the decode error
    path = conf.get("daemonSocketPath") if isinstance(conf, dict) else None
    return path if isinstance(path, str) and path else DEFAULT_SOCKET


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
            sock.settimeout(CONNECT_TIMEOUT)
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
            sock.sendall(head.encode("ascii") + body)
            chunks = []
            size = 0
            while size <= MAX_ANSWER:
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
    status, body = request(path, "POST", CNI_PATH, encode_request(env, stdin))
    if status != 200:
        raise DaemonUnavailable(f"the daemon refused the request: HTTP {status} {body[:200]!r}")
    try:
        answer = loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        answer = None
    if (
        not isinstance(answer, dict)
        or not isinstance(answer.get("code"), int)
        or not isinstance(answer.get("stdout"), str)
    ):
        raise DaemonUnavailable("the daemon's answer is not {code, stdout}")
    return answer["code"], answer["stdout"]


def run_in_process(env: dict[str, str], stdin: bytes) -> int:
    """Thin mode: the launcher runs with -S, so site-packages must be added first."""
    if sys.flags.no_site:
        import site

        site.main()
    from multinet import entry

    return entry.run(env, stdin, sys.stdout)


def main() -> None:
    stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    enc = sys.getfilesystemencoding()
    env = {
        k.decode(enc, "surrogateescape"): v.decode(enc, "surrogateescape")
        for k, v in _environ.items()
    }
    path = socket_path(stdin)
    try:
        code, stdout = call_daemon(path, env, stdin)
    except DaemonUnavailable as e:
        command = env.get("CNI_COMMAND", "the request")
        print(
            f"multinet-shim: daemon unavailable ({e}); running {command} in-process",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.exit(run_in_process(env, stdin))
    sys.stdout.write(stdout)
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written: skip the interpreter's finalization (~2.5 ms per call,
    # 20% of the shim's run time here). The in-process fallback above exits normally.
    _exit(code & 0xFF)


if __name__ == "__main__":
    main()
