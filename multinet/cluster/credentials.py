"""Credentials that rotate on disk, as every API client of multinet reads them.

The kubelet rewrites a projected service-account token (the in-cluster token, a
kubeconfig's `tokenFile`) at ~80% of its lifetime, by an atomic rename; per-node client
certificates are renewed in place. A client notes the files its credentials came from
(`Files`: inode, size and mtime of each, one stat per file and request) and reads them
again when one changed: the token alone (`TokenFile`), or the whole endpoint and a new
TLS context for anything else. After a 401 it reads them again whatever the files say
(`ApiCluster._renew`) and sends the request once more if they changed.

A token is trimmed as client-go trims it: a file written by `echo` ends in a newline,
which no HTTP header may carry.
"""

from __future__ import annotations

import _thread  # not threading: thin mode's per-call path does not import it
import os


def stamp(path: str) -> object:
    """What tells a rewrite of `path`: (inode, size, mtime), or the error of its stat."""
    try:
        st = os.stat(path)
    except OSError as e:
        return e.errno
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Files:
    """Files as they were when first stamped, before they were read."""

    __slots__ = ("paths", "seen")

    def __init__(self, *paths: str) -> None:
        self.paths = tuple(p for p in paths if p)
        self.seen = tuple(stamp(p) for p in self.paths)

    def __add__(self, other: Files) -> Files:
        both = Files()
        both.paths, both.seen = self.paths + other.paths, self.seen + other.seen
        return both

    def changed(self) -> bool:
        """True when one of the files was rewritten, replaced or removed since."""
        return tuple(stamp(p) for p in self.paths) != self.seen


def read_token(path: str) -> str:
    """The token in `path`, trimmed: OSError when unreadable, ValueError when it is no
    token (an HTTP header cannot carry it)."""
    with open(path, encoding="utf-8") as f:
        return checked_token(f.read())


def checked_token(text: str) -> str:
    """`text` trimmed, or ValueError when what is left is no bearer token. The message
    never quotes the token (a secret)."""
    token = text.strip()
    if not all("!" <= c <= "~" for c in token):
        raise ValueError("not a bearer token: a space, control or non-ASCII character in it")
    return token


class TokenFile:
    """The newest token of a file the kubelet rewrites: read again when it changed. A
    file that cannot be read keeps the last token (the kubelet is replacing it; the API
    server says whether the token still works)."""

    def __init__(self, path: str, token: str = "") -> None:
        """`token`: what the file held when the endpoint was read, kept if it cannot be
        read again now."""
        self.path, self._token = path, token
        self.reads = 0  # how many times it was read again since
        self._lock = _thread.allocate_lock()  # multinetd's request threads share one
        self._files = Files(path)
        try:
            self._token = read_token(path)
        except (OSError, ValueError):
            pass

    def current(self) -> str:
        with self._lock:
            if self._files.changed():
                files = Files(self.path)
                try:
                    self._token = read_token(self.path)
                except (OSError, ValueError):
                    return self._token
                self._files = files
                self.reads += 1
            return self._token


class Source:
    """Where an endpoint's credentials were read from, at one moment: the files (stamped
    before they were read) and the token, from its file as it rotates."""

    def __init__(self, files: Files, token: str, token_file: str = "") -> None:
        self.files = files
        self.token = token
        self.token_file = TokenFile(token_file, token) if token_file else None

    def authorization(self) -> str:
        """The Authorization header's value ('' without a token), with the newest token."""
        token = self.token_file.current() if self.token_file is not None else self.token
        return f"Bearer {token}" if token else ""

    @property
    def version(self) -> int:
        """Changes when the token is read again."""
        return self.token_file.reads if self.token_file is not None else 0

    def stale(self) -> bool:
        """True when a file other than the token's changed: the endpoint is read again."""
        return self.files.changed()

    def same(self, other: Source) -> bool:
        """True when `other` (read again after a 401) holds nothing new."""
        return self.files.seen == other.files.seen and self.authorization() == other.authorization()
