"""AdmissionReview v1: one request in, one response out (no I/O: the server's core)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multinet.authoring import annotation, nad

API_VERSION = "admission.k8s.io/v1"


class BadReview(ValueError):
    """The body is not an AdmissionReview v1 request (answered with HTTP 400)."""


DENY, WARN = "deny", "warn"


@dataclass(frozen=True)
class Options:
    validate_pods: bool = False
    # An unknown key of a plugin (or IPAM) type multinet has a schema for: a typo the plugin
    # would ignore, denied; "warn" admits it with a warning (a cluster whose plugins of those
    # types take keys of their own).
    unknown_plugin_keys: str = DENY


def _response(
    uid: str, allowed: bool, message: str = "", warnings: list[str] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 422, "reason": "Invalid", "message": message}
    if warnings:
        response["warnings"] = [w[:1000] for w in warnings[:20]]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def review(body: Any, options: Options = Options()) -> dict[str, Any]:
    """The AdmissionReview to answer with; BadReview when `body` is not a review request."""
    if not isinstance(body, Mapping) or body.get("kind") != "AdmissionReview":
        raise BadReview("expected an AdmissionReview object")
    if body.get("apiVersion") != API_VERSION:
        raise BadReview(f"expected apiVersion {API_VERSION}, got {body.get('apiVersion')!r}")
    request = body.get("request")
    if not isinstance(request, Mapping) or not isinstance(request.get("uid"), str):
        raise BadReview("the AdmissionReview has no request with a uid")
    uid = request["uid"]
    kind = request.get("kind") or {}
    kind_name = kind.get("kind") if isinstance(kind, Mapping) else None
    obj = request.get("object")
    if request.get("operation") == "DELETE" or obj is None:
        return _response(uid, True)
    if kind_name == nad.KIND:
        return _review_nad(uid, obj, options)
    if kind_name == "Pod":
        return _review_pod(uid, request, obj, options)
    return _response(uid, True, warnings=[f"multinet-webhook does not check {kind_name!r} objects"])


def _review_nad(uid: str, obj: Any, options: Options) -> dict[str, Any]:
    unknown_keys = nad.WARNING if options.unknown_plugin_keys == WARN else nad.ERROR
    problems = nad.check_nad(obj, unknown_keys)
    errors = [p.render() for p in problems if p.severity == nad.ERROR]
    warnings = [p.render() for p in problems if p.severity != nad.ERROR]
    if errors:
        name = (obj.get("metadata") or {}).get("name", "") if isinstance(obj, Mapping) else ""
        message = f"NetworkAttachmentDefinition {name}: " + "; ".join(errors)
        return _response(uid, False, message, warnings)
    return _response(uid, True, warnings=warnings)


def _review_pod(uid: str, request: Mapping[str, Any], obj: Any, options: Options) -> dict[str, Any]:
    if not options.validate_pods:
        return _response(uid, True)  # the pods entry is registered; checking is opt-in
    namespace = request.get("namespace") or "default"
    if isinstance(obj, Mapping):
        obj = {**obj, "metadata": {"namespace": namespace, **(obj.get("metadata") or {})}}
    try:
        result = annotation.check_pod(obj)
    except ValueError as e:
        return _response(uid, True, warnings=[f"multinet: {e}"])
    if result.errors:
        return _response(uid, False, "; ".join(result.errors))
    return _response(uid, True)
