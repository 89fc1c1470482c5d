"""The `multinet` CNI executable: environment + stdin in, result or error JSON out.

Every failure becomes the spec's error JSON on stdout with a non-zero exit; an
unexpected exception is logged with its traceback and reported as code 999,
never printed as a traceback to the runtime.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from multinet.cni import version
from multinet.cni.errors import CNIError
from multinet.cni.request import Request, from_env

if TYPE_CHECKING:
    from multinet.attach import Engine

log = logging.getLogger("multinet")
INTERNAL_ERROR = 999


def version_reply(req: Request) -> dict[str, Any]:
    return {"cniVersion": req.cni_version, "supportedVersions": list(version.SUPPORTED)}


def dispatch(engine: Engine, req: Request) -> dict[str, Any] | None:
    """Run a command on an engine: thin mode and the daemon share this."""
    if req.command == "ADD":
        return engine.add(req)
    if req.command == "DEL":
        engine.delete(req)
    elif req.command == "CHECK":
        engine.check(req)
    elif req.command == "GC":
        engine.gc(req)
    elif req.command == "STATUS":
        engine.status(req)
    return None


def handle(req: Request) -> dict[str, Any] | None:
    """Dispatch one parsed request in-process (thin mode)."""
    if req.command == "VERSION":
        return version_reply(req)
    from multinet import attach, logs, netconf
    from multinet.cluster.wiring import engine_for

    attach.check_request(req)
    conf = netconf.load(req.config)
    logs.configure(
        conf.log_level,
        conf.log_file,
        conf.log_to_stderr,
        context=f"container={req.container_id} ifname={req.ifname}",
    )
    return dispatch(engine_for(conf), req)


def run(
    env: Mapping[str, str],
    stdin: bytes,
    out: TextIO,
    handler: Callable[[Request], dict[str, Any] | None] = handle,
) -> int:
    cni_version = version.LATEST
    try:
        req = from_env(env, stdin)
        cni_version = req.cni_version
        reply = handler(req)
    except CNIError as e:
        log.error("%s", e)
        json.dump(e.to_dict(cni_version), out)
        out.write("\n")
        return 1
    except Exception as e:
        log.exception("internal error")
        json.dump(
            {
                "cniVersion": cni_version,
                "code": INTERNAL_ERROR,
                "msg": f"multinet internal error: {type(e).__name__}: {e}",
                "details": "see the multinet log (logFile) for the traceback",
            },
            out,
        )
        out.write("\n")
        return 1
    if reply is not None:
        json.dump(reply, out)
        out.write("\n")
    return 0


def main() -> None:
    stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    sys.exit(run(os.environ, stdin, sys.stdout))


if __name__ == "__main__":
    main()
