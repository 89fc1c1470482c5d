"""One CNI request in, one reply out: the dispatcher thin mode and the daemon share.

`serve` answers a request with the verbs its one callback builds for the request's
netconf (meta.wiring.verbs_for, or the daemon's around its shared cluster cache).
`run` is each process's error boundary: every failure becomes the spec's error JSON
on stdout with a non-zero exit. An exception outside the CNIError tree is a bug: it
is logged with its traceback and reported as code 999, never printed as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from multinet.cni import version
from multinet.cni.errors import INTERNAL_ERROR, CNIError
from multinet.cni.request import Request, check_args, from_env
from multinet.config import netconf
from multinet.config.netconf import NetConf
from multinet.log import log
from multinet.meta.verbs import Verbs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    # Builds the verbs for a request's configuration (thin mode: from the netconf; the
    # daemon: around its shared cluster cache).
    VerbsFactory = Callable[[NetConf, Request], Verbs]
    Handler = Callable[[Request], dict[str, Any] | None]


def version_reply(req: Request) -> dict[str, Any]:
    return {
        "cniVersion": version.answer_version(req.cni_version),
        "supportedVersions": list(version.ACCEPTED),
    }


def check_request(req: Request) -> None:
    """What a request must satisfy before any work: the version gates and CNI_ARGS.

    A netconf without cniVersion is read as 0.1.0, as libcni and Multus read it (Multus's
    own how-to has none): its result is written in the 0.1.0 form."""
    version.require_supported(req.cni_version)
    version.require_for(req.command, req.cni_version)
    check_args(req)


def handle(req: Request, verbs_for: VerbsFactory) -> dict[str, Any] | None:
    """Answer one parsed request: VERSION at once, anything else with its verbs.

    DEL is never refused over the configuration: its version and settings are read
    leniently (what is not sane is logged and left at its default), because a DEL that
    fails blocks the pod's deletion and the journal holds what it needs."""
    if req.command == "VERSION":
        return version_reply(req)
    if req.command == "DEL":
        conf = netconf.load(req.config, lenient=True)
    else:
        check_request(req)
        conf = netconf.load(req.config)
    return verbs_for(conf, req).run(req)


def serve(env: Mapping[str, str], stdin: bytes, out: TextIO, verbs_for: VerbsFactory) -> int:
    """One CNI request answered on `out`, with the verbs `verbs_for` builds; the exit status."""
    return run(env, stdin, out, lambda req: handle(req, verbs_for))


def run(env: Mapping[str, str], stdin: bytes, out: TextIO, handler: Handler) -> int:
    """Parse, handle, write the reply or the error to `out`; the exit status."""
    cni_version = version.LATEST
    try:
        req = from_env(env, stdin)
        cni_version = version.answer_version(req.cni_version)  # never an unsupported one
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
