"""Pods and NADs from the objects a source returns (API JSON, manifest YAML), checked as
user input: an object of the wrong shape is an `ObjectError` naming the key, never a
crash further on. Each source says what the error is to its callers: the API server's
(`kube`) a ClusterError, a manifest's an InvalidConfig; the watch cache skips the object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from multinet.cluster.base import NAD, Pod
from multinet.cni.strictjson import JSONError, check_depth, encodable
from multinet.cni.strictjson import kind as _kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ObjectError(ValueError):
    """An object that is not a well-formed Pod or NAD; the message names the key."""


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ObjectError(f"{where} must be an object, got {_kind(value)}")
    return value


def _text(value: Any, where: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ObjectError(f"{where} must be a string, got {_kind(value)}")
    if not encodable(value) or "\x00" in value:
        raise ObjectError(f"{where} {json.dumps(value)} holds a NUL or a lone surrogate")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    expected = f"{where} must be a map of strings to strings"
    if value is not None and not isinstance(value, Mapping):
        raise ObjectError(f"{expected}, got {_kind(value)}")
    out = {}
    for key, item in (value or {}).items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ObjectError(f"{expected}, got {key!r}: {_kind(item)}")
        out[key] = item
    return out


def _identity(
    obj: Any, kind: str, default_namespace: str
) -> tuple[Mapping[str, Any], Mapping[str, Any], str, str]:
    """(the object, its metadata, its namespace, its name)."""
    top = _map(obj, kind)
    meta = _map(top.get("metadata"), f"{kind} metadata")
    name = _text(meta.get("name"), f"{kind} metadata.name")
    if not name:
        raise ObjectError(f"a {kind} has no metadata.name")
    namespace = _text(meta.get("namespace"), f"{kind} {name} metadata.namespace")
    namespace = namespace or default_namespace
    return top, meta, namespace, name


def pod_from_object(obj: Any, default_namespace: str = "") -> Pod:
    top, meta, namespace, name = _identity(obj, "Pod", default_namespace)
    where = f"Pod {namespace}/{name}"
    spec = _map(top.get("spec"), f"{where} spec")
    return Pod(
        namespace=namespace,
        name=name,
        uid=_text(meta.get("uid"), f"{where} metadata.uid"),
        annotations=_str_map(meta.get("annotations"), f"{where} metadata.annotations"),
        node_name=_text(spec.get("nodeName"), f"{where} spec.nodeName"),
    )


def nad_from_object(obj: Any, default_namespace: str = "") -> NAD:
    kind = "NetworkAttachmentDefinition"
    top, meta, namespace, name = _identity(obj, kind, default_namespace)
    where = f"{kind} {namespace}/{name}"
    config = _map(top.get("spec"), f"{where} spec").get("config")
    if isinstance(config, Mapping):  # YAML authors (and some tools) inline the JSON object
        try:
            check_depth(dict(config))
            config = json.dumps(config, allow_nan=False)
        except JSONError as e:
            raise ObjectError(f"{where} spec.config is {e}") from None
        except (TypeError, ValueError) as e:  # a YAML date, NaN...: not JSON
            raise ObjectError(f"{where} spec.config is not JSON: {e}") from None
    elif config is not None and not isinstance(config, str):
        raise ObjectError(f"{where} spec.config must be a string holding JSON, got {_kind(config)}")
    return NAD(
        namespace=namespace,
        name=name,
        config=config or "",
        annotations=_str_map(meta.get("annotations"), f"{where} metadata.annotations"),
    )
