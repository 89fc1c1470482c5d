"""The `multinet` CNI executable: environment + stdin in, result or error JSON out.

Thin mode: everything runs in this process, with the engine `wiring` builds for the
netconf. The error boundary is the dispatcher's (engine.dispatch.run).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.engine import dispatch
from multinet.engine.engine import Engine


def _engine(conf: NetConf, req: Request) -> Engine:
    from multinet.config import logs
    from multinet.thin.wiring import engine_for

    logs.configure(
        conf.log_level,
        conf.log_file,
        conf.log_to_stderr,
        context=f"container={req.container_id} ifname={req.ifname}",
        options=conf.log_options,
    )
    return engine_for(conf)


def handle(req: Request) -> dict[str, Any] | None:
    """Dispatch one parsed request in-process (thin mode)."""
    return dispatch.handle(req, _engine)


def main() -> None:
    stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    sys.exit(dispatch.run(os.environ, stdin, sys.stdout, handle))


if __name__ == "__main__":
    main()
