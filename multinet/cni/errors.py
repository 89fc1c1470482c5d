"""One exception tree for everything multinet reports, mapped to CNI error codes.

Every failure a user can see is a CNIError subclass; the entry point turns it into
the spec's error JSON. No transport or netlink exception type escapes this tree.
"""

from __future__ import annotations

from typing import Any

INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
DEGRADED = 51
# Plugin-specific codes start at 100.
DELEGATE_FAILED = 100
CLUSTER_ERROR = 101


class CNIError(Exception):
    """A failure reported to the caller as {code, msg, details}."""

    code: int = IO_FAILURE

    def __init__(self, msg: str, details: str = "", *, code: int | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details
        if code is not None:
            self.code = code

    def to_dict(self, cni_version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return self.msg if not self.details else f"{self.msg}: {self.details}"


class IncompatibleVersion(CNIError):
    code = INCOMPATIBLE_VERSION


class UnsupportedField(CNIError):
    code = UNSUPPORTED_FIELD


class UnknownContainer(CNIError):
    code = UNKNOWN_CONTAINER


class InvalidEnvironment(CNIError):
    code = INVALID_ENVIRONMENT


class IOFailure(CNIError):
    code = IO_FAILURE


class DecodeFailure(CNIError):
    code = DECODE_FAILURE


class InvalidConfig(CNIError):
    code = INVALID_CONFIG


class PluginNotFound(InvalidConfig):
    """The delegate's `type` names no executable in binDir or CNI_PATH."""


class TryAgainLater(CNIError):
    code = TRY_AGAIN_LATER


class NotAvailable(CNIError):
    code = NOT_AVAILABLE


class Degraded(CNIError):
    code = DEGRADED


class DelegateError(CNIError):
    """A delegate plugin failed; carries the delegate's own code when it gave one."""

    code = DELEGATE_FAILED


class ClusterError(CNIError):
    """The cluster (API server, manifests) refused or failed a request permanently."""

    code = CLUSTER_ERROR
