"""The three PATCH flavours kube-apiserver accepts for JSON bodies.

- JSON merge patch (RFC 7386): ``null`` deletes, objects merge, the rest replaces.
- Strategic merge patch: merge patch, plus lists merged by a merge key where
  the Kubernetes API declares one (``containers`` by ``name``, ``conditions`` by
  ``type``...) and the ``$patch`` / ``$retainKeys`` / ``$deleteFromPrimitiveList``
  directives. Merge keys are looked up by field name only, not by schema path,
  which is exact for the Pod type. ``$setElementOrder`` is accepted and ignored.
- JSON patch (RFC 6902): add, remove, replace, move, copy, test.

Errors raise ``KubeAPIError`` with the codes the real server uses: a body that
cannot be decoded is 400, a JSON patch that does not apply is 422.
"""

from __future__ import annotations

import copy
from typing import Any

from .kubeapi_status import bad_request, unprocessable, unsupported_media_type

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)

# Field name -> merge key, from the patchMergeKey tags of k8s.io/api/core/v1.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "podIPs": "ip",
    "hostIPs": "ip",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}
# Lists of scalars with patchStrategy "merge": patching adds to the set.
MERGE_SCALAR_LISTS = frozenset({"finalizers"})

_DELETE = object()  # a "$patch: delete" map: the caller drops the key


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch")
    out: dict[str, Any] = merge_patch(doc, patch)
    return out


def _strip_directives(value: Any) -> Any:
    """A patch value being inserted as-is, minus directives and nulls."""
    if isinstance(value, dict):
        if value.get("$patch") == "delete":
            return _DELETE
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if v is not None and not k.startswith("$")
        }
    if isinstance(value, list):
        return [
            _strip_directives(v)
            for v in value
            if not (isinstance(v, dict) and "$patch" in v and len(v) == 1)
        ]
    return copy.deepcopy(value)


def _merge_list(field: str, orig: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [_strip_directives(e) for e in patch if not (isinstance(e, dict) and "$patch" in e)]
    if field in MERGE_SCALAR_LISTS:
        return list(orig) + [copy.deepcopy(v) for v in patch if v not in orig]
    key = MERGE_KEYS.get(field)
    if key is None or not all(isinstance(e, dict) for e in patch):
        return [_strip_directives(e) for e in patch]
    result = [copy.deepcopy(e) for e in orig]
    for elem in patch:
        idx = next(
            (
                i
                for i, o in enumerate(result)
                if isinstance(o, dict) and o.get(key) == elem.get(key)
            ),
            None,
        )
        if elem.get("$patch") == "delete":
            if idx is not None:
                del result[idx]
        elif idx is None:
            result.append(_strip_directives(elem))
        else:
            result[idx] = strategic_merge(result[idx], elem)
    return result


def strategic_merge(orig: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _strip_directives(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return _DELETE
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")
    result = dict(orig) if isinstance(orig, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
        elif key.startswith("$"):
            continue  # $patch handled above; $setElementOrder/$retainKeys below
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def apply_strategic_merge(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch")
    merged = strategic_merge(doc, patch)
    return merged if isinstance(merged, dict) else {}


# --- RFC 6902 -------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise unprocessable(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, path: str, op: str) -> tuple[Any, str]:
    parts = _pointer(path)
    if not parts:
        raise unprocessable(f"{op} operation does not apply: doc is missing path: {path}")
    cur = doc
    for part in parts[:-1]:
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise unprocessable(
                f"{op} operation does not apply: doc is missing path: {path}: missing value"
            ) from None
    if not isinstance(cur, dict | list):
        raise unprocessable(f"{op} operation does not apply: doc is missing path: {path}")
    return cur, parts[-1]


def _get(doc: Any, path: str, op: str) -> Any:
    cur = doc
    for part in _pointer(path):
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise unprocessable(
                f"{op} operation does not apply: doc is missing key: {path}: missing value"
            ) from None
    return cur


def _index(container: list[Any], token: str, path: str, op: str, *, insert: bool) -> int:
    if insert and token == "-":
        return len(container)
    try:
        idx = int(token)
    except ValueError:
        raise unprocessable(f"{op} operation does not apply: invalid index: {path}") from None
    limit = len(container) if insert else len(container) - 1
    if idx < 0 or idx > limit:
        raise unprocessable(f"{op} operation does not apply: index out of range: {path}")
    return idx


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    if path == "":
        return copy.deepcopy(value)
    parent, token = _parent(doc, path, op)
    if isinstance(parent, list):
        parent.insert(_index(parent, token, path, op, insert=True), copy.deepcopy(value))
    else:
        parent[token] = copy.deepcopy(value)
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    parent, token = _parent(doc, path, op)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, path, op, insert=False))
    if token not in parent:
        raise unprocessable(f"{op} operation does not apply: doc is missing key: {path}")
    return parent.pop(token)


def apply_json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    out: Any = copy.deepcopy(doc)
    for op in ops:
        name, path = op.get("op"), op.get("path")
        if not isinstance(path, str):
            raise unprocessable(f"{name} operation does not apply: missing path")
        if name in ("add", "replace", "test") and "value" not in op:
            raise unprocessable(f"{name} operation does not apply: missing value")
        if name == "add":
            out = _add(out, path, op["value"])
        elif name == "remove":
            _remove(out, path)
        elif name == "replace":
            if path == "":
                out = copy.deepcopy(op["value"])
                continue
            _get(out, path, "replace")
            parent, token = _parent(out, path, "replace")
            key = (
                _index(parent, token, path, "replace", insert=False)
                if isinstance(parent, list)
                else token
            )
            parent[key] = copy.deepcopy(op["value"])
        elif name in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise unprocessable(f"{name} operation does not apply: missing from")
            value = (
                _remove(out, src, name) if name == "move" else copy.deepcopy(_get(out, src, name))
            )
            out = _add(out, path, value, name)
        elif name == "test":
            if _get(out, path, "test") != op["value"]:
                raise unprocessable(f"testing value {path} failed: test failed")
        else:
            raise bad_request(f"Unexpected kind: {name}")
    if not isinstance(out, dict):
        raise unprocessable("the patched document is not a JSON object")
    return out


def apply_patch(content_type: str, doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    if content_type == "application/json-patch+json":
        return apply_json_patch(doc, patch)
    if content_type == "application/merge-patch+json":
        return apply_merge_patch(doc, patch)
    if content_type == "application/strategic-merge-patch+json":
        return apply_strategic_merge(doc, patch)
    raise unsupported_media_type(list(PATCH_TYPES))
