"""What every property checks, and how it runs multinet (in-process and as the executable).

Each broken promise raises its own exception type, so that hypothesis reports one
minimal example per kind of defect (it tells bugs apart by type and location):
`InternalError` (code 999), `Delegate999` (a delegate's 999 passed on),
`TracebackSeen`, `BadReply` (not exactly one CNI error JSON), `Escaped` (an exception
out of the dispatcher), `LeakedLinks`,
`LeakedAddresses`, `LeakedJournal`, `WroteHostDirs`, `DelFailed`, `BadResult`.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings

from multinet.cni.errors import CNIError
from multinet.config import logs
from multinet.meta import dispatch
from multinet.thin import main as thin
from tests.integration.conftest import (
    NETNS_DIR,
    TRACEBACK,
    Confs,
    LeakChecker,
    NetInfo,
    State,
    multinet_executable,
)
from tests.support import hostdirs

FUZZ_ENV = "MULTINET_FUZZ_EXAMPLES"
CNI_CODES = frozenset({1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102})
INTERNAL = 999
REFERENCE_PATH = "/usr/lib/cni"
EXECUTABLE_SHARE = 5  # one example in 5 also runs through the `multinet` executable


def fuzz_examples() -> int | None:
    value = os.environ.get(FUZZ_ENV, "").strip()
    return int(value) if value else None


def budget(ci: int) -> settings:
    """`ci` examples per run in CI; MULTINET_FUZZ_EXAMPLES=N examples under `make fuzz`."""
    return settings(max_examples=fuzz_examples() or ci)


# -- the broken promises -----------------------------------------------------------------


class PropertyFailure(AssertionError):
    pass


class InternalError(PropertyFailure):
    """An error JSON with code 999: an exception escaped the CNIError tree."""


class Delegate999(PropertyFailure):
    """Code 999 that a delegate reported (Go's types.ErrInternal), passed through as is:
    the runtime reads a multinet bug where a delegate refused its config."""


class TracebackSeen(PropertyFailure):
    pass


class BadReply(PropertyFailure):
    """Not exactly one CNI error JSON ({code: int, msg: str}) on a failure."""


class Escaped(PropertyFailure):
    """An exception out of dispatch.run, or a `log.exception` record."""


class LeakedLinks(PropertyFailure):
    pass


class LeakedAddresses(PropertyFailure):
    pass


class LeakedJournal(PropertyFailure):
    pass


class WroteHostDirs(PropertyFailure):
    """Something was written in the host's default CNI directories (tests/support/
    hostdirs.py): a plugin or multinet ran with its default, not the test's directory."""


class DelFailed(PropertyFailure):
    pass


class BadResult(PropertyFailure):
    """A successful ADD whose stdout is no CNI result."""


@dataclass
class Reply:
    rc: int
    stdout: str
    log: str = ""  # the captured log records (in-process) or stderr (executable)
    error: dict[str, Any] | None = None  # the error JSON when rc != 0
    result: Any = None  # stdout's JSON when rc == 0

    @property
    def code(self) -> int | None:
        return None if self.error is None else self.error["code"]

    def __str__(self) -> str:
        return f"rc={self.rc} stdout={self.stdout[:600]!r} log={self.log[-1500:]!r}"


def check_reply(rc: int, stdout: str, log: str) -> Reply:
    """The promises about one reply: no traceback; a failure is one CNI error JSON with a
    code of the table; a success prints nothing or one JSON document."""
    reply = Reply(rc, stdout, log)
    text = stdout.strip()
    try:
        value = json.loads(text) if text else None
    except ValueError:
        raise BadReply(f"stdout is not one JSON document: {reply}") from None
    if isinstance(value, dict) and value.get("code") == INTERNAL:  # its traceback is logged
        if str(value.get("msg", "")).startswith("multinet internal error"):
            raise InternalError(f"{value.get('msg')} | {reply}")
        raise Delegate999(f"{value.get('msg')} | {reply}")
    if TRACEBACK in stdout or TRACEBACK in log:
        raise TracebackSeen(str(reply))
    if rc == 0:
        reply.result = value
        return reply
    if not (
        isinstance(value, dict)
        and isinstance(value.get("code"), int)
        and not isinstance(value.get("code"), bool)
        and isinstance(value.get("msg"), str)
    ):
        raise BadReply(f"a failure without one CNI error JSON: {reply}")
    reply.error = value
    if value["code"] not in CNI_CODES:
        raise BadReply(f"code {value['code']} is not in the CNI table: {reply}")
    return reply


def check_result(reply: Reply) -> None:
    """A successful ADD printed a CNI result: cniVersion, and well-formed ips/interfaces."""
    res = reply.result
    if not isinstance(res, dict) or not isinstance(res.get("cniVersion"), str):
        raise BadResult(str(reply))
    for ip in res.get("ips", []):
        try:
            ipaddress.ip_interface(ip["address"])
        except (KeyError, TypeError, ValueError):
            raise BadResult(f"bad ips entry {ip!r}: {reply}") from None
    for iface in res.get("interfaces", []):
        if not isinstance(iface, dict) or not isinstance(iface.get("name"), str):
            raise BadResult(f"bad interfaces entry {iface!r}: {reply}")


# -- in-process runs -------------------------------------------------------------------------


class Capture(logging.Handler):
    """Every record multinet logs during one run, formatted (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)

    def exceptions(self) -> list[str]:
        return [self.format(r) for r in self.records if r.exc_info]


_LOGGER = logging.getLogger("multinet")
_configure = logs.configure


def _fresh_logger(capture: Capture) -> None:
    for h in list(_LOGGER.handlers):
        _LOGGER.removeHandler(h)
        if h is not capture:
            h.close()  # a logFile handler of the last run: no fd leak over 10,000 runs
    _LOGGER.addHandler(capture)


@pytest.fixture
def capture_logs(monkeypatch: pytest.MonkeyPatch) -> Capture:
    """multinet's logging, as thin mode configures it, plus a handler recording it all."""
    capture = Capture()

    def configure(*args: Any, **kwargs: Any) -> None:
        _configure(*args, **kwargs)
        _LOGGER.addHandler(capture)

    monkeypatch.setattr(logs, "configure", configure)
    return capture


def run_inprocess(
    capture: Capture,
    env: Mapping[str, str],
    stdin: bytes,
    handler: Callable[..., Any] = thin.handle,
) -> Reply:
    """dispatch.run as thin mode calls it; a `log.exception` record or an exception out of
    it breaks the error boundary's promise."""
    _fresh_logger(capture)
    capture.records.clear()
    out = io.StringIO()
    try:
        rc = dispatch.run(env, stdin, out, handler)
    except BaseException as e:
        raise Escaped(f"{type(e).__name__} escaped dispatch.run: {e!s:.500}") from e
    reply = check_reply(rc, out.getvalue(), capture.text())
    if capture.exceptions():
        raise Escaped(f"log.exception record: {capture.exceptions()[0][-1500:]}")
    return reply


# Linux's limit on one "NAME=value" string of an environment (32 pages).
MAX_ARG_STRLEN = 32 * 4096 - 1

# -- executable runs ---------------------------------------------------------------------------


def run_executable(env: Mapping[str, str], stdin: bytes, timeout: float = 60) -> Reply:
    """The real `multinet` with exactly `env` (str values may hold surrogateescape'd bytes,
    which reach it as those bytes: os.environb)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    environb = {os.fsencode(k): os.fsencode(v) for k, v in {**base, **env}.items()}
    proc = subprocess.run(
        [multinet_executable()],
        input=stdin,
        capture_output=True,
        env=environb,
        timeout=timeout,
        check=False,
    )
    return check_reply(
        proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )


# -- the world of one property -------------------------------------------------------------------


@dataclass(repr=False)
class World:
    """One property's network namespace, state directories and log; `begin()` makes all
    of it as new before each example, `assert_clean()` is the leak check."""

    state: State
    leaks: LeakChecker
    netns_factory: Callable[[], str]
    capture: Capture
    netns: str = ""
    log_file: Path = field(init=False)
    host_dirs: hostdirs.Snapshot = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.log_file = self.state.root / "multinet.log"

    def __repr__(self) -> str:
        return f"World({self.state.root})"

    def begin(self) -> None:
        if not self.netns or not Path(self.netns).exists() or self.leaks.pod_links(self.netns):
            if self.netns:
                NetInfo.delete_netns(self.netns)
            self.netns = self.netns_factory()
        for d in (self.state.cni_dir, self.state.ipam_dir):
            for child in d.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        self.log_file.write_text("")
        self.host_dirs = hostdirs.snapshot()

    def env(self, command: str, container_id: str = "c1", **extra: str) -> dict[str, str]:
        return {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": self.netns,
            "CNI_IFNAME": "eth0",
            "CNI_ARGS": "",
            "CNI_PATH": REFERENCE_PATH,
            **extra,
        }

    def run(self, env: Mapping[str, str], stdin: bytes) -> Reply:
        reply = run_inprocess(self.capture, env, stdin)
        self.check_log_file()
        return reply

    def run_executable(self, env: Mapping[str, str], stdin: bytes) -> Reply:
        if any(len(os.fsencode(k) + os.fsencode(v)) >= MAX_ARG_STRLEN for k, v in env.items()):
            # execve refuses a variable this long (E2BIG): no runtime could start any
            # plugin with it, so there is no executable run to check; in-process only.
            return self.run(env, stdin)
        reply = run_executable(env, stdin)
        self.check_log_file()
        return reply

    def runners(self, example: object) -> list[Callable[[Mapping[str, str], bytes], Reply]]:
        """In-process for every example; also the executable for one example in
        EXECUTABLE_SHARE (chosen by the example's repr: the same input, the same choice,
        as hypothesis needs for shrinking), for the traceback-on-stderr check."""
        chosen = (
            zlib.crc32(repr(example).encode("utf-8", "surrogateescape")) % EXECUTABLE_SHARE == 0
        )
        return [self.run, self.run_executable] if chosen else [self.run]

    def check_log_file(self) -> None:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        if TRACEBACK in text:
            raise TracebackSeen(f"in the logFile: {text[-2000:]}")

    def assert_clean(self, when: str) -> None:
        """Nothing left: no pod interface but lo, no new host link, no host-local
        allocation, no journal; nothing written in the host's default directories since
        `begin()`."""
        written = hostdirs.changes(self.host_dirs, hostdirs.snapshot())
        if written:
            raise WroteHostDirs(hostdirs.report(when, written))
        if Path(self.netns).exists() and self.leaks.pod_links(self.netns):
            raise LeakedLinks(f"{when}: {sorted(self.leaks.pod_links(self.netns))} in the pod")
        if self.leaks.new_host_links():  # the bridge plugin's default cni0, say
            raise LeakedLinks(f"{when}: {self.leaks.new_host_links()} created on the host")
        if self.leaks.allocations():
            raise LeakedAddresses(f"{when}: host-local holds {self.leaks.allocations()}")
        if self.leaks.journal_files():
            raise LeakedJournal(f"{when}: journal files {self.leaks.journal_files()}")

    def add_then_del(
        self, env: Mapping[str, str], stdin: bytes, run: Callable[[Mapping[str, str], bytes], Reply]
    ) -> Reply:
        """The runtime's sequence for one input: ADD; success -> a valid result, and DEL of
        the same input cleans it all up; failure -> nothing left, and the runtime's DEL
        after it answers properly and leaves nothing either."""
        reply = run({**env, "CNI_COMMAND": "ADD"}, stdin)
        if reply.rc == 0:
            check_result(reply)
        else:
            self.assert_clean(f"after the failed ADD ({reply.error})")
        deleted = run({**env, "CNI_COMMAND": "DEL"}, stdin)
        if reply.rc == 0 and deleted.rc != 0:
            raise DelFailed(f"DEL of a successful ADD failed: {deleted}")
        self.assert_clean(f"after ADD ({reply.rc}) and DEL ({deleted.rc})")
        return reply


@pytest.fixture
def world(
    state: State, leaks: LeakChecker, netns_factory: Callable[[], str], capture_logs: Capture
) -> World:
    return World(state, leaks, netns_factory, capture_logs)


def static_netconf(confs: Confs, state: State, bridges: tuple[str, str]) -> dict[str, Any]:
    """multinet with two static delegates (bridge + host-local, each on its own bridge and
    subnet): a failure of the second rolls the first back."""
    first, second = bridges
    return confs.multinet(
        [
            confs.bridge_net("cluster", first, confs.subnet()),
            confs.bridge_net("second", second, confs.subnet()),
        ],
        logFile=str(state.root / "multinet.log"),
        logLevel="debug",
    )


def netconf_shape() -> dict[str, Any]:
    """`static_netconf`'s shape, for the strategies (built before any test runs)."""
    root = Path("/shape")
    dummy = State(root, root, root, root, root)
    return static_netconf(Confs(dummy), dummy, ("b0", "b1"))


@pytest.fixture
def netconf(confs: Confs, state: State, bridge_factory: Callable[..., str]) -> dict[str, Any]:
    """This test's `static_netconf`."""
    return static_netconf(confs, state, (bridge_factory(), bridge_factory()))


def pinned(**cases: Sequence[Any]) -> Callable[[Any], Any]:
    """`@example` for each position of the sequences: ``pinned(doc=[a, b])``."""

    def wrap(fn: Any) -> Any:
        values = list(zip(*cases.values(), strict=True))
        for row in reversed(values):
            fn = example(**dict(zip(cases, row, strict=True)))(fn)
        return fn

    return wrap


def prop(ci: int, **cases: tuple[Any, Sequence[Any]]) -> Callable[[Any], Any]:
    """A property: ``@prop(ci=40, doc=(strategy, pins))`` is @given(doc=strategy) with
    the pins as @example and `budget(ci)`."""

    def wrap(fn: Any) -> Any:
        fn = budget(ci)(fn)
        fn = given(**{name: strategy for name, (strategy, _) in cases.items()})(fn)
        return pinned(**{name: pins for name, (_, pins) in cases.items()})(fn)

    return wrap


def names_container(env: Mapping[str, str], container_id: str, ifname: str) -> bool:
    """The environment of a DEL still names the container the valid ADD made."""
    return env.get("CNI_CONTAINERID") == container_id and env.get("CNI_IFNAME") == ifname


def is_cni_error(exc: BaseException) -> bool:
    return isinstance(exc, CNIError) and exc.code in CNI_CODES


__all__ = ["NETNS_DIR"]
