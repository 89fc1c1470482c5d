"""Build the engine for a configuration: static delegates, or a cluster source."""

from __future__ import annotations

from multinet.attach import Engine
from multinet.netconf import NetConf


def engine_for(conf: NetConf) -> Engine:
    return Engine(conf)
