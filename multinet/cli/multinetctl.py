"""multinetctl: inspect what multinet attached on this node."""

from __future__ import annotations

import argparse
import json
import sys

from multinet.cli import daemonctl, nadctl
from multinet.cluster.records import StatusRecords
from multinet.cni.errors import CNIError
from multinet.config.netconf import DEFAULT_CNI_DIR
from multinet.engine.journal import FileJournalStore, summary


def cmd_attachments(args: argparse.Namespace) -> int:
    json.dump(summary(FileJournalStore(args.cni_dir)), sys.stdout, indent=2)
    print()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    namespace, sep, name = args.pod.partition("/")
    if not sep or not namespace or not name:
        print(f"multinetctl: expected NAMESPACE/POD, got {args.pod!r}", file=sys.stderr)
        return 2
    if args.kubeconfig:
        from multinet.meta.wiring import api_for

        status = api_for(args.kubeconfig, args.cni_dir).network_status(namespace, name)
    else:
        status = StatusRecords(args.cni_dir).read_status(namespace, name)
    if status is None:
        print(f"multinetctl: no network-status recorded for {namespace}/{name}", file=sys.stderr)
        return 1
    json.dump(status, sys.stdout, indent=2)
    print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="multinetctl", description=__doc__)
    p.add_argument("--cni-dir", default=DEFAULT_CNI_DIR, help="multinet state directory (cniDir)")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("attachments", help="list the attachments recorded in the journal")
    a.set_defaults(func=cmd_attachments)
    st = sub.add_parser("status", help="show a pod's network-status")
    st.add_argument("pod", metavar="NAMESPACE/POD")
    st.add_argument("--kubeconfig", default="", help="read the pod annotation from the API server")
    st.set_defaults(func=cmd_status)
    daemonctl.add_parsers(sub)
    nadctl.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """The process's error boundary: a failure is one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (CNIError, OSError, ValueError) as e:  # ValueError: a path the OS refuses
        print(f"multinetctl {args.command}: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
