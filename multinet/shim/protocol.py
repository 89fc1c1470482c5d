"""The shim protocol, version 1: the one place the shim and the daemon read it from.

HTTP/1.1 with JSON bodies over the daemon's unix socket, one request per connection
(`Connection: close`). docs/shim-protocol.md is the prose of this module; the native
shim implements that document.

  POST /v1/cni  {"env": {NAME: VALUE, ...}, "stdin": "<the netconf>"}
          ->    200 {"code": <exit status>, "stdout": "<what thin mode would print>"}

`env` is the shim's whole environment, `stdin` the bytes it read. Bytes that are not
UTF-8 (in stdin, names or values) travel as lone surrogates U+DC80..U+DCFF, as
Python's "surrogateescape" writes them; the body is ASCII-only JSON. Only a complete
200 answer of that shape counts: anything else means "the daemon did not answer".

Standard library C modules only (`_json`): this runs on the shim's hot path, where
`json` and its `re`/`enum` imports would cost more than the interpreter's start.
"""

try:  # C accelerators: no `re`/`enum` import (the pure modules are the fallback)
    from _json import encode_basestring_ascii as _quote
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - CPython always has them
    from json.encoder import encode_basestring_ascii as _quote
    from json.scanner import make_scanner as _make_scanner

VERSION = 1
DEFAULT_SOCKET = "/run/multinet/multinet.sock"
CNI_ROUTE = "/v1/cni"
SOCKET_KEY = "daemonSocketPath"  # the netconf key naming the socket
CONNECT_TIMEOUT = 2.0  # a live daemon accepts at once; longer means it is wedged
MAX_REQUEST = 16 << 20  # bytes of a request body the daemon reads
MAX_ANSWER = 16 << 20  # bytes of an answer a client reads (the native shim: the same)


class ProtocolError(ValueError):
    """A message that does not have the protocol's shape; the text says what is wrong."""


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
    """json.loads for one JSON document; ValueError when it is not one (nested too deep
    for the parser included: the protocol's messages nest two levels)."""
    start = len(text) - len(text.lstrip())
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    except RecursionError:
        raise ValueError("nested too deep") from None
    if text[end:].strip():
        raise ValueError("extra data after the JSON document")
    return value


def encode_request(env: dict[str, str], stdin: bytes) -> bytes:
    pairs = ",".join(_quote(k) + ":" + _quote(v) for k, v in env.items())
    text = _quote(stdin.decode("utf-8", "surrogateescape"))
    return ('{"env":{' + pairs + '},"stdin":' + text + "}").encode("ascii")


def decode_request(body: bytes) -> tuple[dict[str, str], bytes]:
    """(env, stdin) of a request body; ProtocolError when it is not one."""
    try:
        data = loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ProtocolError("body must be a JSON object {env, stdin}")
    env, stdin = data.get("env"), data.get("stdin")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ProtocolError("'env' must be an object of strings")
    for k, v in env.items():
        if not k or "=" in k or "\x00" in k + v or not _is_bytes(k + v):
            raise ProtocolError(f"'env' {_quote(k)} is not an environment variable of bytes")
    if not isinstance(stdin, str):
        raise ProtocolError("'stdin' must be a string")
    if not _is_bytes(stdin):
        raise ProtocolError("'stdin' holds characters that are not bytes")
    return env, stdin.encode("utf-8", "surrogateescape")


def _is_bytes(text: str) -> bool:
    """True when `text` is bytes as surrogateescape decodes them (no other lone surrogate)."""
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def encode_answer(code: int, stdout: str) -> bytes:
    return ('{"code":' + str(int(code)) + ',"stdout":' + _quote(stdout) + "}").encode("ascii")


def decode_answer(body: bytes) -> tuple[int, str]:
    """(exit code, stdout) of a 200 answer's body; ProtocolError when it is not one."""
    try:
        answer = loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):
        raise ProtocolError("the daemon's answer is not a JSON object")
    code, stdout = answer.get("code"), answer.get("stdout")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(stdout, str):
        raise ProtocolError("the daemon's answer is not {code, stdout}")
    return code, stdout


def socket_path(stdin: bytes) -> str:
    """`daemonSocketPath` of the stdin netconf; the default when absent or unreadable (the
    daemon, or the fallback, reports what is wrong with it: the decode error, a path
    holding a NUL or a lone surrogate)."""
    try:
        conf = loads(stdin.decode("utf-8", "surrogateescape"))
    except ValueError:
        return DEFAULT_SOCKET
    path = conf.get(SOCKET_KEY) if isinstance(conf, dict) else None
    if not isinstance(path, str) or not path or "\x00" in path or not _is_bytes(path):
        return DEFAULT_SOCKET
    return path
