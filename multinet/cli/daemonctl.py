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
    print("\n".join(paths.values()))
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from multinet.cli import install

    token_file = args.token_file
    if not token_file and args.pod_uid:
        token_file = install.projected_token_path(args.kubelet_dir, args.pod_uid, args.token_volume)
    plan = install.Plan(
        host_root=args.host_root,
        bin_dir=args.bin_dir,
        python=args.python,
        runtime_src=args.runtime,
        kubeconfig=args.kubeconfig,
        token_file=token_file,
        api_server=args.api_server,
        cni_conf_dir=args.cni_conf_dir,
        thin_config=args.thin_config,
    )
    try:
        paths = install.uninstall_node(plan) if args.uninstall else install.install_node(plan)
    except (OSError, ValueError) as e:
        print(f"multinetctl install: {e}", file=sys.stderr)
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
        "install-shim",
        help="install the native multinet-shim, its thin fallback multinet, and the plugins",
    )
    i.add_argument("dest", metavar="DEST_DIR", help="usually the CNI bin directory")
    i.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter with multinet installed, in the launchers' #! line",
    )
    i.set_defaults(func=cmd_install_shim)
    n = sub.add_parser("install", help="install multinet on this node (the init container's step)")
    n.add_argument("--host-root", default="/host", help="the host's / as mounted here")
    n.add_argument("--bin-dir", default="/opt/cni/bin", help="the host's CNI bin directory")
    n.add_argument("--python", default=sys.executable, help="the launchers' interpreter")
    n.add_argument("--runtime", default="", help="a versioned tree to copy to the same host path")
    n.add_argument("--kubeconfig", default="/etc/cni/net.d/multinet.d/multinet.kubeconfig")
    n.add_argument("--token-file", default="", help="host path of a kubelet-rotated token")
    n.add_argument("--pod-uid", default="", help="this pod's UID: the token is its projected one")
    n.add_argument("--kubelet-dir", default="/var/lib/kubelet")
    n.add_argument("--token-volume", default="multinet-token")
    n.add_argument("--api-server", default="", help="default: from KUBERNETES_SERVICE_HOST/PORT")
    n.add_argument("--cni-conf-dir", default="/etc/cni/net.d")
    n.add_argument("--thin-config", default="", help="install this netconf (thin mode)")
    n.add_argument("--uninstall", action="store_true", help="remove what install wrote")
    n.set_defaults(func=cmd_install)
