"""``Status`` error bodies shaped like the real kube-apiserver's.

Messages, reasons and ``details`` follow k8s.io/apimachinery/pkg/api/errors so
that code matching on them (``reason == "Conflict"``, ``code == 409``...) sees
what it would see against a real cluster.
"""

from __future__ import annotations

import json
from typing import Any

JSON = dict[str, Any]

# What storage.Store.Update says when resourceVersion does not match.
OPTIMISTIC_LOCK_MSG = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


class KubeAPIError(Exception):
    """A failed API call; ``status`` is the body the server answers with."""

    def __init__(self, status: JSON, headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.headers = headers or {}

    @property
    def code(self) -> int:
        return int(self.status["code"])


def qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def status(code: int, reason: str, message: str, details: JSON | None = None) -> JSON:
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def success(details: JSON) -> JSON:
    """What a DELETE of a kind that does not return the object answers (no code)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _details(group: str, kind: str, name: str = "", **extra: Any) -> JSON:
    out: JSON = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    out["kind"] = kind
    out.update(extra)
    return out


def error(code: int, reason: str, message: str, details: JSON | None = None) -> KubeAPIError:
    return KubeAPIError(status(code, reason, message, details))


def not_found(group: str, plural: str, name: str) -> KubeAPIError:
    return error(
        404,
        "NotFound",
        f'{qualified(group, plural)} "{name}" not found',
        _details(group, plural, name),
    )


def unknown_path() -> KubeAPIError:
    return error(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(group: str, plural: str, name: str) -> KubeAPIError:
    return error(
        409,
        "AlreadyExists",
        f'{qualified(group, plural)} "{name}" already exists',
        _details(group, plural, name),
    )


def conflict(group: str, plural: str, name: str, why: str = OPTIMISTIC_LOCK_MSG) -> KubeAPIError:
    return error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(group, plural)} "{name}": {why}',
        _details(group, plural, name),
    )


def precondition_failed(
    group: str, plural: str, namespace: str, name: str, what: str, want: str, have: str
) -> KubeAPIError:
    """A failed UID/resourceVersion precondition, worded as the etcd3 storage layer does."""
    key = f"/registry/{qualified(group, plural)}/{namespace}/{name}".replace("//", "/")
    why = (
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: {what} in precondition: {want}, "
        f"{what} in object meta: {have}"
    )
    return conflict(group, plural, name, why)


def field_invalid(path: str, value: Any, detail: str) -> tuple[str, str, str]:
    return ("FieldValueInvalid", path, f"Invalid value: {json.dumps(value)}: {detail}")


def field_required(path: str, detail: str = "") -> tuple[str, str, str]:
    return ("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def field_forbidden(path: str, detail: str) -> tuple[str, str, str]:
    return ("FieldValueForbidden", path, f"Forbidden: {detail}")


def invalid(group: str, kind: str, name: str, errors: list[tuple[str, str, str]]) -> KubeAPIError:
    """422 Invalid; ``errors`` are (cause type, field path, body) as made above."""
    texts = [f"{path}: {body}" for _, path, body in errors]
    aggregate = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    group_kind = f"{kind}.{group}" if group else kind
    causes = [{"reason": typ, "message": body, "field": path} for typ, path, body in errors]
    return error(
        422,
        "Invalid",
        f'{group_kind} "{name}" is invalid: {aggregate}',
        _details(group, kind, name, causes=causes),
    )


def bad_request(message: str) -> KubeAPIError:
    return error(400, "BadRequest", message)


def namespace_mismatch() -> KubeAPIError:
    return bad_request(
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def expired(message: str) -> KubeAPIError:
    return error(410, "Expired", message)


def unprocessable(cause: str) -> KubeAPIError:
    """What a failing JSON patch yields (errors.NewGenericServerResponse with 422)."""
    return error(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]},
    )


def unsupported_media_type(accepted: list[str]) -> KubeAPIError:
    return error(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def internal(message: str) -> KubeAPIError:
    return error(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        {"causes": [{"message": message}]},
    )


def unauthorized() -> KubeAPIError:
    return error(401, "Unauthorized", "Unauthorized")


def method_not_allowed() -> KubeAPIError:
    return error(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


# Who the RBAC authorizer says was refused (multinet's service account in the deploy).
FORBIDDEN_USER = "system:serviceaccount:kube-system:multinet"


def forbidden(group: str, plural: str, name: str, verb: str, namespace: str) -> KubeAPIError:
    """403 as the RBAC authorizer words it (apiserver's errors.NewForbidden)."""
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    why = f'User "{FORBIDDEN_USER}" cannot {verb} resource "{plural}" in API group "{group}"{where}'
    target = f'{qualified(group, plural)} "{name}"' if name else qualified(group, plural)
    return error(403, "Forbidden", f"{target} is forbidden: {why}", _details(group, plural, name))


def for_code(
    code: int,
    group: str = "",
    plural: str = "",
    name: str = "",
    *,
    verb: str = "get",
    namespace: str = "",
) -> KubeAPIError:
    """A plausible Status for an injected fault with HTTP ``code`` on a request of ``verb``
    for ``plural`` (and ``name``) in ``namespace``."""
    what = f'{qualified(group, plural)} "{name}"' if plural and name else "the request"
    if code == 403 and plural:
        return forbidden(group, plural, name, verb, namespace)
    if code == 404 and plural:
        return not_found(group, plural, name or "unknown")
    if code == 409 and plural:
        return conflict(group, plural, name or "unknown")
    if code == 410:
        return expired("too old resource version: 1 (2)")
    if code == 429:
        err = error(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            {"retryAfterSeconds": 1},
        )
        err.headers["Retry-After"] = "1"
        return err
    if code == 500:
        return internal("injected fault")
    simple = {
        400: ("BadRequest", "the server rejected our request for an unknown reason"),
        401: ("Unauthorized", "Unauthorized"),
        403: ("Forbidden", f"{what} is forbidden"),
        404: ("NotFound", "the server could not find the requested resource"),
        405: (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
        409: ("Conflict", "the server reported a conflict"),
        422: ("Invalid", "the server rejected our request due to an error in our request"),
        503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
        504: (
            "Timeout",
            "the server was unable to return a response in the time allotted,"
            " but may still be processing the request",
        ),
    }
    reason, message = simple.get(
        code,
        (
            "",
            f"the server responded with the status code {code} but did not return more information",
        ),
    )
    return error(code, reason, message)
