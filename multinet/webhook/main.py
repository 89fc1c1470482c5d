"""multinet-webhook [--address HOST:PORT] [--cert F] [--key F] [--validate-pods]
[--unknown-plugin-keys deny|warn]"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from multinet.webhook.review import DENY, WARN, Options
from multinet.webhook.server import CertReloader, WebhookServer, serve_in_thread


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="multinet-webhook", description=__doc__)
    p.add_argument("--address", default=os.environ.get("MULTINET_WEBHOOK_ADDRESS", ":8443"))
    p.add_argument("--cert", default="/etc/multinet/webhook/tls.crt")
    p.add_argument("--key", default="/etc/multinet/webhook/tls.key")
    p.add_argument(
        "--validate-pods",
        action="store_true",
        default=os.environ.get("MULTINET_WEBHOOK_VALIDATE_PODS", "") == "true",
        help="also deny pods whose networks annotation ADD would refuse, or that names a key "
        "ADD ignores (a typo: `multinetctl annotation validate` rules)",
    )
    p.add_argument(
        "--unknown-plugin-keys",
        choices=[DENY, WARN],
        default=os.environ.get("MULTINET_WEBHOOK_UNKNOWN_PLUGIN_KEYS", DENY),
        help="a NAD with a key its plugin's schema does not know (a typo): deny it (default), "
        "or admit it with a warning (plugins of those types that take keys of their own)",
    )
    p.add_argument("--log-level", default="info")
    args = p.parse_args(argv)
    if args.unknown_plugin_keys not in (DENY, WARN):  # argparse checks the flag, not the env
        p.error(
            f"MULTINET_WEBHOOK_UNKNOWN_PLUGIN_KEYS: invalid choice: {args.unknown_plugin_keys!r} "
            f"(choose from {DENY!r}, {WARN!r})"
        )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        server = WebhookServer(
            _address(args.address),
            CertReloader(args.cert, args.key),
            Options(validate_pods=args.validate_pods, unknown_plugin_keys=args.unknown_plugin_keys),
        )
    except (OSError, ValueError) as e:
        print(f"multinet-webhook: {e}", file=sys.stderr)
        sys.exit(1)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve_in_thread(server)
    logging.getLogger("multinet.webhook").info("serving on %s", args.address)
    stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
