"""server.peer_gone: whether a waiting request's client closed its end, never waiting."""

from __future__ import annotations

import socket
import time

from multinet.daemon.server import peer_gone


def test_a_client_still_there_is_not_gone_and_the_check_never_waits() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(30)  # as the handler's socket: a plain recv would wait it out
        started = time.monotonic()
        assert not peer_gone(ours)
        assert time.monotonic() - started < 1
        theirs.sendall(b"x")  # bytes after its request: still there
        assert not peer_gone(ours)


def test_a_client_that_closed_is_gone() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        ours.settimeout(30)
        theirs.close()
        assert peer_gone(ours)


def test_no_connection_is_not_gone() -> None:
    assert not peer_gone(None)
