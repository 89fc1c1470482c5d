"""Dynamic networks' records: what a change of a running pod's networks asks (Change),
what came of it (Outcome), and the request its delegates run with (`request_for`).

The steps that make a change are the sandbox's (engine.sandbox: attach, detach,
recover, save); the story of one change is told by meta.dynamic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multinet.cni.errors import CNIError
from multinet.cni.request import Request, parse_args
from multinet.engine.journal import Entry, Journal
from multinet.engine.plan import Attachment


@dataclass(frozen=True)
class Change:
    """What makes a sandbox's networks what is asked: DEL `remove` (interface names of
    journaled networks), then ADD `add`."""

    add: tuple[Attachment, ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


@dataclass
class Outcome:
    added: list[Entry] = field(default_factory=list)
    removed: list[Entry] = field(default_factory=list)
    # (network name, interface, error): an ADD rolled back, or a DEL whose release failed
    # (its interface was still removed).
    failed: list[tuple[str, str, CNIError]] = field(default_factory=list)
    recovered: list[Entry] = field(default_factory=list)  # a change a crash interrupted
    # Networks whose DEL failed: kept in the journal as "removing" (their interface is
    # gone), for the next reconcile or the sandbox's DEL to release again.
    unreleased: list[Entry] = field(default_factory=list)
    saved: bool = False  # the journal holds this outcome

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.recovered)


def request_for(
    journal: Journal, fallback: Mapping[str, Any] | None = None, command: str = "ADD"
) -> Request:
    """The request a change runs its delegates with: the sandbox's, from its journal. A
    journal written before it kept its netconf gets `fallback` (the daemon's own)."""
    config = dict(journal.netconf or fallback or {})
    return Request(
        command=command,
        config=config,
        cni_version=journal.cni_version or str(config.get("cniVersion", "0.1.0")),
        container_id=journal.container_id,
        netns=journal.netns,
        ifname=journal.ifname,
        args_raw=journal.args,
        args=parse_args(journal.args, lenient=True),
        path=tuple(journal.path),
        # The delegates get this process's environment (PATH...), as the runtime's.
        env={k: v for k, v in os.environ.items() if not k.startswith("CNI_")},
    )
