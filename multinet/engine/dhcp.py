"""The reference dhcp IPAM's client daemon: which sockets a plan needs, and whether they answer.

The reference `dhcp` IPAM plugin does nothing itself: it asks its daemon (`dhcp daemon
-socketpath P`) over a unix socket, `ipam.daemonSocketPath`, default /run/cni/dhcp.sock.
Without the daemon its ADD hangs for seconds and leaks the interface the main plugin made;
so before any delegate of an ADD runs, every socket the plan needs is probed and a missing
daemon is a "try again later" (code 11) naming the socket and the network.

`sockets_needed` is the rule; `check` (the engine's preflight, run by the ADD and by
a change of a running pod before any delegate) does the probing, through the engine's
`probe` seam.

With the daemon up but no DHCP server answering, the daemon keeps asking for about three
minutes (10 s per exchange, back-off up to 62 s) before its "no more tries". `bound` (what
the engine runs each network's ADD under) limits such a network's ADD to `dhcpTimeout`
(default 30 s, within `delegateTimeout`) and reports its end as "try again later" (code
11) saying that no DHCP server answered; the rollback then removes the interface. A daemon whose own
retries end first (`-timeout`, `-resendmax`) answers "error calling DHCP.Allocate: no more
tries": reported the same way, its message kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import CNIError, DelegateError, DelegateTimedOut, TryAgainLater
from multinet.config.netconf import NetConf
from multinet.engine.plan import Attachment, Plan
from multinet.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from multinet.record import NamedTuple

DEFAULT_SOCKET = "/run/cni/dhcp.sock"
# What the reference daemon answers when its retries ran out without an offer.
GAVE_UP = ("DHCP.Allocate", "no more tries")
PROBE_TIMEOUT = 0.5  # seconds: a live daemon accepts at once


def _as_is(error: CNIError) -> CNIError:
    return error


@record(frozen=True)
class Bound:
    """A limit on one network's ADD tighter than delegateTimeout, and what reaching it
    means: `reached(timeout, seconds)` is the error reported instead of the bare timeout
    (no DHCP server answered); `explain(error)` what the network's other failures are
    reported as (the delegate's message kept in it)."""

    seconds: float
    reached: Callable[[DelegateTimedOut, float], CNIError]
    explain: Callable[[CNIError], CNIError] = _as_is


class Need(NamedTuple):  # not a dataclass: ~10x cheaper to create, on every call's start
    network: str  # the attachment's name (network-status name)
    socket: str


def socket_of(plugin: Mapping[str, Any]) -> str | None:
    """The daemon socket a plugin's dhcp IPAM talks to, or None (no dhcp IPAM)."""
    ipam = plugin.get("ipam")
    if not isinstance(ipam, Mapping) or ipam.get("type") != "dhcp":
        return None
    path = ipam.get("daemonSocketPath")
    return path if isinstance(path, str) and path else DEFAULT_SOCKET


def network_sockets(net: NetworkConfig) -> list[str]:
    """The distinct daemon sockets a network's plugins need, in plugin order."""
    out: list[str] = []
    for plugin in net.plugins:
        path = socket_of(plugin)
        if path is not None and path not in out:
            out.append(path)
    return out


def sockets_needed(plan: Plan) -> list[Need]:
    """Every (network, socket) of the plan whose plugins use dhcp IPAM, in plan order."""
    return [Need(a.name, path) for a in plan.attachments for path in network_sockets(a.network)]


Probe = Callable[[str], str | None]


def probe(path: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None if a daemon accepts a connection on `path`, else why not."""
    import socket  # only a plan with dhcp IPAM pays (~3 ms of a thin DEL's start)

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
    except OSError as e:
        return e.strerror or str(e)
    finally:
        s.close()
    return None


def in_root(path: str, root: str) -> str:
    """`path` as seen from the host's root `root` ('' or '/': as it is): with `hostRoot`
    the delegates run chrooted there, so the plugin's socket is under it."""
    if not root or root == "/":
        return path
    return os.path.join(root, path.lstrip("/"))


def check(plan: Plan, probe: Probe = probe, root: str = "") -> None:
    """Raise TryAgainLater naming every socket of the plan no daemon answers on.
    `root`: the netconf's hostRoot, under which the delegates see their sockets."""
    missing = _missing(sockets_needed(plan), lambda path: probe(in_root(path, root)))
    if missing:
        what = "; ".join(f"network {n.network!r} needs {n.socket} ({why})" for n, why in missing)
        raise TryAgainLater(
            "the DHCP client daemon is not running: " + what,
            "start it ('/usr/lib/cni/dhcp daemon -socketpath <socket>', or multinetd's "
            "dhcpDaemon: true), then try again",
        )


def _missing(needs: Iterable[Need], probe: Probe) -> list[tuple[Need, str]]:
    answers: dict[str, str | None] = {}
    out = []
    for need in needs:
        if need.socket not in answers:
            answers[need.socket] = probe(need.socket)
        why = answers[need.socket]
        if why is not None:
            out.append((need, why))
    return out


def bound(conf: NetConf, att: Attachment) -> Bound | None:
    """A network with dhcp IPAM waits `dhcpTimeout` for its lease, then is told to try
    again later: no DHCP server answered (the delegate's own timeout message in details)."""
    sockets = network_sockets(att.network)
    if not sockets:
        return None

    advice = (
        f"the DHCP client daemon on {', '.join(sockets)} got no offer: check the DHCP "
        "server on this network's LAN, then try again"
    )

    def reached(timeout: DelegateTimedOut, seconds: float) -> CNIError:
        return TryAgainLater(
            f"no DHCP server answered: no lease obtained within {seconds:g}s",
            f"{timeout.msg} (dhcpTimeout {conf.dhcp_timeout:g}s, delegateTimeout "
            f"{conf.delegate_timeout:g}s); {advice}",
        )

    def explain(error: CNIError) -> CNIError:
        if not isinstance(error, DelegateError) or not all(w in error.msg for w in GAVE_UP):
            return error
        details = "; ".join(d for d in (error.details, advice) if d)
        return TryAgainLater(
            f"no DHCP server answered: the DHCP daemon gave up: {error.msg}", details
        )

    return Bound(conf.dhcp_timeout, reached, explain)
