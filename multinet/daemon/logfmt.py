"""Structured daemon logs: one logfmt line per record, with the request's identity.

Every line carries `pod` and `container` (empty outside a request), taken from a
context variable that the request's thread sets, so that the engine's existing
log calls need not know they run in the daemon.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator, Mapping

from multinet.config.logs import LEVELS, handlers

FIELDS = ("pod", "container", "ifname", "command")
_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "multinet_request", default=None
)


def request_fields(env: Mapping[str, str]) -> dict[str, str]:
    """The identity of a CNI request, from its environment (never fails)."""
    args = dict(
        item.partition("=")[::2] for item in env.get("CNI_ARGS", "").split(";") if "=" in item
    )
    namespace, name = args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", "")
    return {
        "pod": f"{namespace}/{name}" if name else "",
        "container": env.get("CNI_CONTAINERID", ""),
        "ifname": env.get("CNI_IFNAME", ""),
        "command": env.get("CNI_COMMAND", ""),
    }


@contextlib.contextmanager
def request_context(fields: Mapping[str, str]) -> Iterator[None]:
    token = _context.set(fields)
    try:
        yield
    finally:
        _context.reset(token)


def _quote(value: str) -> str:
    if value and not any(c in value for c in ' "=\\\n\t'):
        return value
    for raw, esc in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\t", "\\t")):
        value = value.replace(raw, esc)
    return f'"{value}"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = _context.get() or {}
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"time={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            *(f"{k}={_quote(ctx.get(k, ''))}" for k in FIELDS),
            f"msg={_quote(record.getMessage())}",
        ]
        extra = getattr(record, "fields", None)
        if isinstance(extra, Mapping):
            parts += [f"{k}={_quote(str(v))}" for k, v in extra.items()]
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure(level: str, log_file: str, to_stderr: bool) -> None:
    """Send the multinet logger (the engine's) and everything else to logfmt handlers."""
    chosen = handlers(log_file, to_stderr or not log_file, "multinetd")
    fmt = LogfmtFormatter()
    for h in chosen:
        h.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = chosen
    root.setLevel(logging.WARNING)  # libraries (kubernetes, urllib3) stay quiet
    ours = logging.getLogger("multinet")
    ours.handlers.clear()
    ours.propagate = True
    ours.setLevel(LEVELS.get(level, logging.INFO))
