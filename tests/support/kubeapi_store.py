"""The object store behind the fake API server: get, list, create, update, delete.

It plays the generic registry (``registry/generic/registry.Store``) over etcd:
objects are kept by key ``namespace/name`` (lists come in etcd's key order),
preconditions and resourceVersion checks are done where the real one does them,
and the per-kind rules come from ``kubeapi_types``. Every change goes through
the ``ChangeLog`` (resourceVersions, history, watches). An update that changes
nothing keeps the resourceVersion and emits no event, as on a real cluster.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Generator
from typing import Any

from . import kubeapi_types as types
from .kubeapi_select import Selector
from .kubeapi_status import (
    already_exists,
    bad_request,
    conflict,
    error,
    expired,
    field_invalid,
    field_required,
    invalid,
    namespace_mismatch,
    not_found,
    precondition_failed,
    success,
)
from .kubeapi_types import ResourceType
from .kubeapi_watch import ChangeLog

JSON = dict[str, Any]


def _key(ns: str, name: str) -> str:
    return f"{ns}/{name}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _strip_list_item(rt: ResourceType, obj: JSON) -> JSON:
    # Built-in kinds are listed without per-item kind/apiVersion, custom ones with.
    item = copy.deepcopy(obj)
    if rt.builtin:
        item.pop("kind", None)
        item.pop("apiVersion", None)
    return item


class Store:
    def __init__(self, history: int = 10_000) -> None:
        self._cond = threading.Condition()
        self._objects: dict[ResourceType, dict[str, JSON]] = {rt: {} for rt in types.RESOURCES}
        self.changes = ChangeLog(self._cond, history)

    # --- reads ------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self.changes.rv

    def get(self, rt: ResourceType, ns: str, name: str) -> JSON:
        with self._cond:
            obj = self._objects[rt].get(_key(ns, name))
        if obj is None:
            raise not_found(rt.group, rt.plural, name)
        return copy.deepcopy(obj)

    def all(self, rt: ResourceType) -> list[JSON]:
        with self._cond:
            objs = list(self._objects[rt].values())
        return copy.deepcopy(sorted(objs, key=lambda o: int(o["metadata"]["resourceVersion"])))

    def list_objects(self, rt: ResourceType, sel: Selector, limit: int = 0, cont: str = "") -> JSON:
        start = ""
        with self._cond:
            rv = self.changes.rv
            if cont:
                rv, start = self._decode_continue(cont)
            items = [
                obj
                for key, obj in sorted(self._objects[rt].items())
                if key > start and sel.matches(obj)
            ]
        meta: JSON = {"resourceVersion": str(rv)}
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = {
                "v": "meta.k8s.io/v1",
                "rv": rv,
                "start": _key(last["namespace"], last["name"]) + "\0",
            }
            meta["continue"] = (
                base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
            )
            if sel.empty:
                meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [_strip_list_item(rt, o) for o in items],
        }

    def _decode_continue(self, cont: str) -> tuple[int, str]:
        try:
            token = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
            rv, start = int(token["rv"]), str(token["start"]).rstrip("\0")
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise bad_request(f"continue key is not valid: {cont}") from None
        if rv < self.changes.compacted:
            raise expired(
                "The provided continue parameter is too old to display a consistent list result."
                " You can start a new list without the continue parameter."
            )
        return rv, start

    # --- writes -----------------------------------------------------------

    def _commit(self, rt: ResourceType, kind: str, obj: JSON, prev: JSON | None) -> None:
        """Store (or drop) ``obj`` and log the change; lock held."""
        key = _key(obj["metadata"]["namespace"], obj["metadata"]["name"])
        if kind == "DELETED":
            del self._objects[rt][key]
        else:
            self._objects[rt][key] = obj
        self.changes.append(rt, kind, obj, prev)

    def create(
        self, rt: ResourceType, ns: str, body: Any, *, seed: bool = False, dry_run: bool = False
    ) -> JSON:
        """Create as a POST would; ``seed`` keeps uid/timestamps/status (test fixtures)."""
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        types.check_type_meta(rt, obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if meta.get("namespace") not in (None, "", ns):
            raise namespace_mismatch()
        meta["namespace"] = ns
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(
                    rt.group,
                    rt.kind,
                    "",
                    [field_required("metadata.name", "name or generateName is required")],
                )
            suffix = "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
            meta["name"] = meta["generateName"] + suffix
        if meta.pop("resourceVersion", None) and not seed:
            # What storage.Create says; the API server passes it through as a 500.
            raise error(500, "", "resourceVersion should not be set on objects to be created")
        if not seed or not meta.get("uid"):
            meta["uid"] = str(uuid.uuid4())
        if not seed or not meta.get("creationTimestamp"):
            meta["creationTimestamp"] = _now()
        types.apply_defaults(rt, obj)
        types.prepare_for_create(rt, obj, keep_status=seed)
        if not seed:
            types.raise_invalid(rt, meta["name"], types.validate_create(rt, obj))
        with self._cond:
            if _key(ns, meta["name"]) in self._objects[rt]:
                raise already_exists(rt.group, rt.plural, meta["name"])
            if not dry_run:
                self._commit(rt, "ADDED", obj, None)
        return copy.deepcopy(obj)

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        transform: Callable[[JSON], Any],
        *,
        subresource: str = "",
        uid_precondition: str = "",
        seed: bool = False,
        dry_run: bool = False,
    ) -> JSON:
        """Replace the object by ``transform(copy of it)``, as Store.Update does.

        ``uid_precondition`` is the UID of a PUT body (a storage precondition,
        409 on mismatch); a patch has none, so a changed UID there is a 422.
        ``seed`` stores the result as-is (tests playing kubelet or scheduler).
        """
        with self._cond:
            existing = self._objects[rt].get(_key(ns, name))
            if existing is None:
                raise not_found(rt.group, rt.plural, name)
            old_meta = existing["metadata"]
            if uid_precondition and uid_precondition != old_meta["uid"]:
                raise precondition_failed(
                    rt.group, rt.plural, ns, name, "UID", uid_precondition, old_meta["uid"]
                )
            new = transform(copy.deepcopy(existing))
            if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
                raise bad_request("the request body must be a JSON object with object metadata")
            meta = new.setdefault("metadata", {})
            if not seed:
                self._check_update(rt, ns, name, new, existing, subresource)
            meta["namespace"], meta["name"] = ns, name
            new["kind"], new["apiVersion"] = rt.kind, rt.api_version
            meta["resourceVersion"] = old_meta["resourceVersion"]
            if new == existing:
                return copy.deepcopy(existing)  # no-op: no new resourceVersion, no event
            types.bump_generation(rt, new, existing)
            if not dry_run:
                self._commit(rt, "MODIFIED", new, existing)
        return copy.deepcopy(new)

    @staticmethod
    def _check_update(
        rt: ResourceType, ns: str, name: str, new: JSON, old: JSON, subresource: str
    ) -> None:
        types.check_type_meta(rt, new)
        meta, old_meta = new["metadata"], old["metadata"]
        if meta.get("name") != name:
            raise bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on"
                f" the URL ({name})"
            )
        if meta.get("namespace") not in (None, "", ns):
            raise namespace_mismatch()
        new_rv = meta.get("resourceVersion")
        if new_rv not in (None, ""):
            if not str(new_rv).isdigit():
                err = field_invalid("metadata.resourceVersion", new_rv, "must be an integer")
                raise invalid(rt.group, rt.kind, name, [err])
            if str(new_rv) != old_meta["resourceVersion"]:
                raise conflict(rt.group, rt.plural, name)
        types.apply_defaults(rt, new)
        types.prepare_for_update(rt, new, old, subresource)
        types.before_update(meta, old_meta)
        types.raise_invalid(rt, name, types.validate_update(rt, new, old, subresource))

    def delete(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        *,
        uid: str = "",
        resource_version: str = "",
        dry_run: bool = False,
    ) -> JSON:
        """Delete at once (no graceful termination); answers as the real endpoint does."""
        with self._cond:
            existing = self._objects[rt].get(_key(ns, name))
            if existing is None:
                raise not_found(rt.group, rt.plural, name)
            meta = existing["metadata"]
            for what, want, have in (
                ("UID", uid, meta["uid"]),
                ("ResourceVersion", resource_version, meta["resourceVersion"]),
            ):
                if want and want != have:
                    raise precondition_failed(rt.group, rt.plural, ns, name, what, want, have)
            if not dry_run:
                self._commit(rt, "DELETED", copy.deepcopy(existing), existing)
        if rt.returns_deleted:
            return copy.deepcopy(existing)
        details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": meta["uid"]}
        return success({k: v for k, v in details.items() if v})

    def watch(
        self,
        rt: ResourceType,
        sel: Selector,
        resource_version: str,
        *,
        timeout: float,
        bookmark_interval: float = 0.0,
        send_initial_events: bool = False,
    ) -> Generator[JSON, None, None]:
        """See ``ChangeLog.watch``."""
        return self.changes.watch(
            rt,
            sel,
            resource_version,
            timeout=timeout,
            bookmark_interval=bookmark_interval,
            snapshot=lambda: [o for _, o in sorted(self._objects[rt].items()) if sel.matches(o)],
            send_initial_events=send_initial_events,
        )
