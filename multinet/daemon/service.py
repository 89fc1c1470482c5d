"""Run one forwarded CNI request in the daemon, exactly as thin mode would run it.

The request is the shim's environment and stdin, untouched; the daemon's thin
keys are laid over the stdin netconf, and the verbs come from a factory so
that the daemon's long-lived cluster (the watch-backed cache) is shared by all
requests. Requests for the same (container, ifname) are serialized by the
journal's flock, which holds between threads of one process as it does between
processes (each lock takes its own open file description).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from multinet.cluster.base import Cluster, DeviceSource
from multinet.cluster.podresources import KubeletDevices
from multinet.cni import strictjson
from multinet.cni.exec import Observer
from multinet.cni.request import Request
from multinet.config.netconf import NetConf
from multinet.daemon.logfmt import request_context, request_fields
from multinet.daemon.metrics import DaemonMetrics
from multinet.meta import dispatch
from multinet.meta.verbs import Verbs
from multinet.meta.wiring import verbs_for

log = logging.getLogger("multinet.daemon")

VerbsFactory = Callable[[NetConf, Cluster | None, Observer | None, DeviceSource | None], Verbs]


def overlay(stdin: bytes, overrides: Mapping[str, Any]) -> bytes:
    """The stdin netconf with the daemon's keys laid over it; unchanged when it is not a
    JSON object, so that the engine reports the decode error as thin mode does."""
    if not overrides:
        return stdin
    try:
        conf = strictjson.loads(stdin or b"{}")
    except strictjson.JSONError:
        return stdin
    if not isinstance(conf, dict):
        return stdin
    conf.update(overrides)
    return json.dumps(conf).encode()


def error_code(code: int, stdout: str) -> int:
    """The CNI error code of a failed request (its exit status when stdout has none)."""
    if code == 0:
        return 0
    try:
        reported = json.loads(stdout).get("code")
    except (ValueError, AttributeError):
        return code
    return reported if isinstance(reported, int) else code


class CNIService:
    def __init__(
        self,
        overrides: Mapping[str, Any],
        metrics: DaemonMetrics,
        verbs_factory: VerbsFactory = verbs_for,
        cluster: Cluster | None = None,
        devices: KubeletDevices | None = None,
    ) -> None:
        self.devices = devices
        self.overrides = dict(overrides)
        self.metrics = metrics
        self.verbs_factory = verbs_factory
        self.cluster = cluster

    def serve(self, env: Mapping[str, str], stdin: bytes) -> tuple[int, str]:
        """(exit code, stdout) of the request; never raises."""
        fields = request_fields(env)
        with request_context(fields):
            self.metrics.started()
            started = time.monotonic()
            out = io.StringIO()
            code = 1
            try:
                code = dispatch.serve(env, overlay(stdin, self.overrides), out, self.verbs)
            finally:
                seconds = time.monotonic() - started
                reported = error_code(code, out.getvalue())
                self.metrics.finished(fields["command"], reported, seconds)
            log.info(
                "%s %s",
                fields["command"] or "request",
                "succeeded" if code == 0 else "failed",
                extra={"fields": {"code": reported, "seconds": f"{seconds:.3f}"}},
            )
        return code, out.getvalue()

    def own_netconf(self, cni_version: str) -> dict[str, Any]:
        """A netconf of the daemon's keys alone: what a change of a running pod runs with
        when the sandbox's journal predates journaled netconfs."""
        return {
            "cniVersion": cni_version or "1.0.0",
            "name": "multinet",
            "type": "multinet",
            **self.overrides,
        }

    def verbs(self, conf: NetConf, req: Request) -> Verbs:
        """The verbs for one request (or one change of a running pod's networks)."""
        # The shared cluster talks to the API server; a manifests directory or static
        # delegates alone get what verbs_for builds for them.
        shared = self.cluster if conf.uses_cluster and not conf.manifests else None
        # The daemon's one PodResources channel, for requests that name its socket.
        devices = None
        if self.devices is not None and self.devices.serves(
            conf.pod_resources_socket, conf.device_checkpoint
        ):
            devices = self.devices
        return self.verbs_factory(conf, shared, self.metrics.observe_delegate, devices)
