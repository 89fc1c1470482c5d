"""multinetctl's authoring subcommands: NADs, the networks annotation, webhook certificates.

multinetctl nad validate FILE|DIR... [--output text|json]
multinetctl nad create TYPE NAME [--namespace NS] [--set KEY=VALUE ...]
multinetctl nad explain TYPE [KEY]
multinetctl annotation validate [VALUE] [--pod FILE] [--namespace NS] [--nads DIR | --kubeconfig F]
multinetctl webhook certs DIR [--service NAME] [--namespace NS] [--days N]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path) as f:
        return f.read()


def _report(valid: bool, findings: list[Any], **more: Any) -> None:
    """The one `-o json` shape of both validators: {valid, problems: [{document, path,
    message, severity}], ...}."""
    out = {"valid": valid, "problems": [f.to_dict() for f in findings], **more}
    json.dump(out, sys.stdout, indent=2)
    print()


def _sources(paths: list[str]) -> list[str]:
    """The files to read: a directory stands for its YAML files."""
    import os

    from multinet.authoring import nad

    out = []
    for path in paths:
        out += nad.manifest_files(path) if path != "-" and os.path.isdir(path) else [path]
    return out


def cmd_nad_validate(args: argparse.Namespace) -> int:
    from multinet.authoring import nad

    findings = []
    files = _sources(args.files)
    for path in files:
        findings += nad.validate_text(_read(path), "<stdin>" if path == "-" else path)
    for path in args.files:
        if path not in files and not nad.manifest_files(path):
            findings.append(nad.Finding(path, "", "no YAML file (.yaml, .yml, .json) in it"))
    errors = [f for f in findings if f.severity == nad.ERROR]
    if args.output == "json":
        _report(not errors, findings)
    else:
        for f in findings:
            print(f.line(), file=sys.stderr if f.severity == nad.ERROR else sys.stdout)
        if not errors:
            print(f"valid ({len(files)} file{'s' * (len(files) != 1)})")
    return 1 if errors else 0


def cmd_nad_create(args: argparse.Namespace) -> int:
    """The NAD on stdout; on stderr what `nad validate` would say of it and the example
    values to replace."""
    from multinet.authoring import nad

    created = nad.create(args.type, args.name, args.namespace, args.set or [])
    for p in created.problems:
        print(f"multinetctl nad create: {p.severity}: {p.render()}", file=sys.stderr)
    if created.errors:
        return 1
    for placeholder in created.placeholders:
        print(f"multinetctl nad create: placeholder: {placeholder.render()}", file=sys.stderr)
    sys.stdout.write(nad.to_yaml(created.nad))
    return 0


def cmd_nad_explain(args: argparse.Namespace) -> int:
    from multinet.authoring import nad

    print(nad.explain(args.type, args.key))
    return 0


def _kube_lookup(kubeconfig: str) -> Any:
    import tempfile

    from multinet.cluster.kube import KubeCluster

    cluster = KubeCluster(kubeconfig, state_dir=tempfile.gettempdir())

    def lookup(namespace: str, name: str) -> Mapping[str, Any] | None:
        found = cluster.get_nad(namespace, name)
        if found is None:
            return None
        return {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": found.name, "namespace": found.namespace},
            "spec": {"config": found.config} if found.config.strip() else {},
        }

    return lookup


def cmd_annotation_validate(args: argparse.Namespace) -> int:
    from multinet.authoring import annotation

    lookup = None
    if args.nads:
        lookup = annotation.directory_lookup(args.nads)
    elif args.kubeconfig:
        lookup = _kube_lookup(args.kubeconfig)
    if args.pod:
        source = "<stdin>" if args.pod == "-" else args.pod
        result = annotation.check_pod(annotation.load_pod(_read(args.pod)), lookup, source)
    elif args.value is not None:
        result = annotation.check(args.value, args.namespace, lookup)
    else:
        print("multinetctl annotation validate: give VALUE or --pod FILE", file=sys.stderr)
        return 2
    if args.output == "json":
        networks = [
            {"namespace": s.namespace, "name": s.name, "interface": s.interface}
            for s in result.selections
        ]
        _report(not result.errors, result.findings, networks=networks)
    else:
        for e in result.errors:
            print(f"error: {e}", file=sys.stderr)
        for w in result.warnings:
            print(f"warning: {w}")
        if not result.errors:
            for s in result.selections:
                print(f"{s.namespace}/{s.name}" + (f"@{s.interface}" if s.interface else ""))
    return 1 if result.errors else 0


def cmd_webhook_certs(args: argparse.Namespace) -> int:
    from multinet.cli import webhookcerts

    paths = webhookcerts.generate(args.dir, args.service, args.namespace, days=args.days)
    print("\n".join(paths))
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `nad`, `annotation` and `webhook` on multinetctl's subparsers."""
    n = sub.add_parser("nad", help="validate, create and explain NetworkAttachmentDefinitions")
    nsub = n.add_subparsers(dest="nad_command", required=True)
    v = nsub.add_parser(
        "validate", help="validate NADs in YAML files ('-': stdin; a directory: its YAML files)"
    )
    v.add_argument("files", nargs="+", metavar="FILE|DIR")
    v.add_argument("--output", "-o", choices=["text", "json"], default="text")
    v.set_defaults(func=cmd_nad_validate)
    c = nsub.add_parser("create", help="print a valid NAD for a plugin type")
    c.add_argument("type", metavar="TYPE")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--namespace", "-n", default="default")
    c.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a config key (dotted for nested: ipam.type=static); VALUE is JSON or a string",
    )
    c.set_defaults(func=cmd_nad_create)
    e = nsub.add_parser("explain", help="a plugin's keys: meaning, type, default")
    e.add_argument("type", metavar="TYPE")
    e.add_argument("key", metavar="KEY", nargs="?")
    e.set_defaults(func=cmd_nad_explain)

    a = sub.add_parser("annotation", help="check a pod's networks annotation")
    asub = a.add_subparsers(dest="annotation_command", required=True)
    av = asub.add_parser("validate", help="parse it as ADD does; check the NADs it names")
    av.add_argument("value", metavar="VALUE", nargs="?")
    av.add_argument("--pod", metavar="FILE", help="a Pod manifest ('-': stdin)")
    av.add_argument("--namespace", "-n", default="default", help="the pod's namespace")
    av.add_argument("--nads", metavar="DIR", help="a directory of NAD manifests")
    av.add_argument("--kubeconfig", default="", help="look the NADs up in the cluster")
    av.add_argument("--output", "-o", choices=["text", "json"], default="text")
    av.set_defaults(func=cmd_annotation_validate)

    w = sub.add_parser("webhook", help="the admission webhook's certificates")
    wsub = w.add_subparsers(dest="webhook_command", required=True)
    wc = wsub.add_parser("certs", help="generate a CA and a serving certificate (openssl)")
    wc.add_argument("dir", metavar="DIR")
    wc.add_argument("--service", default="multinet-webhook")
    wc.add_argument("--namespace", default="kube-system")
    wc.add_argument("--days", type=int, default=825)
    wc.set_defaults(func=cmd_webhook_certs)
