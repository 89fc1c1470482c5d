"""One exception tree for everything multinet reports, mapped to CNI error codes.

Every failure a user can see is an instance of a CNIError subclass, and each subclass
carries its code; the dispatcher (`meta.dispatch`) is the one place that turns them
into the spec's error JSON. No transport or netlink exception type escapes this tree.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Self

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
ALREADY_ATTACHED = 102
POOL_EXHAUSTED = 103
# Not an error multinet raises: what the dispatcher reports when a bug escaped the tree.
INTERNAL_ERROR = 999


class CNIError(Exception):
    """A failure reported to the caller as {code, msg, details}. Abstract: raise a subclass,
    whose class attribute `code` says what kind of failure it is."""

    code: int

    def __init__(self, msg: str, details: str = "") -> None:
        if type(self) is CNIError:
            raise TypeError("CNIError is abstract: raise one of its subclasses")
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def with_context(self, context: str) -> Self:
        """The same error (type, code, details) with `context: ` before its message."""
        import copy  # an error path's: not on every call

        out = copy.copy(self)
        out.msg = f"{context}: {self.msg}"
        out.args = (out.msg,)
        return out

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


class DelegateTimedOut(IOFailure):
    """A delegate ran past its time limit and was killed (an I/O failure, code 5, unless
    the engine knows what the wait meant: a DHCP lease no server answered for)."""


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


class NetworkNotFound(InvalidConfig):
    """A referenced NAD or config does not exist (reported as a NoNetworkFound event)."""


class DelegateError(CNIError):
    """A delegate plugin failed; carries the delegate's own code when it gave one."""

    code = DELEGATE_FAILED

    def __init__(self, msg: str, details: str = "", *, code: int = DELEGATE_FAILED) -> None:
        super().__init__(msg, details)
        self.code = code


class AlreadyAttached(CNIError):
    """ADD of a container and interface that already have networks attached."""

    code = ALREADY_ATTACHED


class PoolExhausted(CNIError):
    """multinet-ipam: every address of a pool's range is allocated (or excluded)."""

    code = POOL_EXHAUSTED


class ClusterError(CNIError):
    """The cluster (API server, manifests) refused or failed a request permanently."""

    code = CLUSTER_ERROR


class CredentialsError(ClusterError):
    """No working credentials for the API server: a kubeconfig, token or service account
    that cannot be read, or a 401. The shim's in-process fallback answers it code 11."""
