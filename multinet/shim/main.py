"""multinet-shim (Python): the thick-mode CNI executable; forwards each call to multinetd.

It runs once per pod sandbox, so its hot path imports only C modules of the
standard library (`_json`, `_socket`, through multinet.shim.protocol and .client).

When the daemon does not answer (no socket, refused, the connection dropped,
an answer that is not a complete 200), the shim runs the request in-process
with the thin engine (`multinet.thin.main`) instead of failing. That is safe for
every command, including an ADD that the daemon died in the middle of: the
journal and its per-(container, ifname) lock make the retry roll back whatever
the dead daemon had half-attached before adding again.

On the host it runs from a launcher (`multinet.cli.install`) as `python -IS`:
nothing but this package and the standard library is imported until it falls back.

No `from __future__ import annotations` here: it imports the `__future__` module,
~0.3 ms of every call (the annotations below are valid at run time in 3.11).
"""

import sys
from posix import _exit
from posix import environ as _environ  # os.environ without importing os (~2 ms)

from multinet.shim import protocol
from multinet.shim.client import DaemonUnavailable, call_daemon


def run_in_process(env: dict[str, str], stdin: bytes) -> int:
    """Thin mode: the launcher runs with -S, so site-packages must be added first."""
    if sys.flags.no_site:
        import site

        site.main()
    from multinet.engine import dispatch
    from multinet.thin.main import handle

    return dispatch.run(env, stdin, sys.stdout, handle)


def main() -> None:
    stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    enc = sys.getfilesystemencoding()
    env = {
        k.decode(enc, "surrogateescape"): v.decode(enc, "surrogateescape")
        for k, v in _environ.items()
    }
    path = protocol.socket_path(stdin)
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
