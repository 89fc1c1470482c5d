"""multinetctl's thick-mode subcommands: ask the daemon over its socket, install the shim.

multinetctl daemon health|ready|attachments|metrics [--socket PATH]
multinetctl install-shim DEST_DIR [--python PATH]
"""

from __future__ import annotations

import argparse
import json
import sys

from multinet.shim import client
from multinet.shim.protocol import DEFAULT_SOCKET

QUERIES = {
    "health": "/healthz",
    "ready": "/readyz",
    "attachments": "/v1/attachments",
    "metrics": "/metrics",
}
TIMEOUT = 10.0


def cmd_daemon(args: argparse.Namespace) -> int:
    try:
        status, body = client.request(args.socket, "GET", QUERIES[args.query], timeout=TIMEOUT)
    except client.DaemonUnavailable as e:
        print(f"multinetctl: the daemon does not answer: {e}", file=sys.stderr)
        return 1
    text = body.decode("utf-8", "replace")
    if args.query == "metrics":
        sys.stdout.write(text)
    else:
        try:
            json.dump(json.loads(text), sys.stdout, indent=2)
            print()
        except ValueError:
            print(text)
    return 0 if status == 200 else 1


def cmd_install_shim(args: argparse.Namespace) -> int:
    from multinet.cli import install

    try:
        paths = install.install(args.dest, args.python)
    except (OSError, ValueError) as e:
        print(f"multinetctl: cannot install the shim: {e}", file=sys.stderr)
        return 1
    print("\n".join(paths))
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommands on multinetctl's subparsers."""
    d = sub.add_parser("daemon", help="ask the thick-mode daemon (multinetd)")
    d.add_argument("query", choices=sorted(QUERIES))
    d.add_argument("--socket", default=DEFAULT_SOCKET, help="the daemon's socket")
    d.set_defaults(func=cmd_daemon)
    i = sub.add_parser(
        "install-shim", help="install the native multinet-shim and its thin fallback, multinet"
    )
    i.add_argument("dest", metavar="DEST_DIR", help="usually the CNI bin directory")
    i.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter with multinet installed, in the thin launcher's #! line",
    )
    i.set_defaults(func=cmd_install_shim)
