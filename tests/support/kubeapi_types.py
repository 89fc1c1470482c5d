"""The resources the fake serves, and the per-kind rules of the real registry.

For each kind this mirrors the parts of the kube-apiserver "strategy" a client
can observe: defaulting, what create resets (a new Pod's status), what an update
of the main resource or of ``/status`` may change, and the validation errors
(422) for the mistakes a client is likely to make.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from .kubeapi_status import (
    bad_request,
    field_forbidden,
    field_invalid,
    field_required,
    invalid,
)

JSON = dict[str, Any]
FieldError = tuple[str, str, str]

_META_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    field_labels: tuple[str, ...] = _META_FIELDS
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    builtin: bool = True  # built-in kinds: strategic merge patch, bare list items
    returns_deleted: bool = False  # DELETE answers with the object, not a Status
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "get", "list", "patch", "update", "watch")
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def unsupported_field(self, label: str) -> str:
        if self.builtin:
            return f"field label not supported: {label}"
        known = ", ".join(f'"{f}"' for f in self.field_labels)
        return f'"{label}" is not a known field selector: only {known}'


POD = ResourceType(
    "",
    "v1",
    "pods",
    "pod",
    "Pod",
    field_labels=(
        *_META_FIELDS,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    short_names=("po",),
    subresources=("status",),
    returns_deleted=True,
)
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
CORE_EVENT = ResourceType(
    "",
    "v1",
    "events",
    "event",
    "Event",
    field_labels=(
        *_META_FIELDS,
        *(f"involvedObject.{f}" for f in _INVOLVED),
        "reason",
        "reportingComponent",
        "type",
    ),
    short_names=("ev",),
)
EVENT_V1 = ResourceType(
    "events.k8s.io",
    "v1",
    "events",
    "event",
    "Event",
    field_labels=(
        *_META_FIELDS,
        *(f"regarding.{f}" for f in _INVOLVED),
        "reason",
        "reportingController",
        "type",
    ),
    short_names=("ev",),
)
NAD = ResourceType(
    "k8s.cni.cncf.io",
    "v1",
    "network-attachment-definitions",
    "network-attachment-definition",
    "NetworkAttachmentDefinition",
    short_names=("net-attach-def",),
    builtin=False,
)
# multinet-ipam's pools (crds/ippool.yaml): a custom resource of its own group and version.
IPPOOL = ResourceType(
    "ipam.multinet.dev",
    "v1alpha1",
    "ippools",
    "ippool",
    "IPPool",
    builtin=False,
)
RESOURCES = (POD, CORE_EVENT, EVENT_V1, NAD, IPPOOL)

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{_SUBDOMAIN}')"
)


def check_type_meta(rt: ResourceType, obj: JSON) -> None:
    """400 when the body names another kind; custom resources must name theirs."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not rt.builtin and (not kind or not api_version):
        missing = "Kind" if not kind else "apiVersion"
        raise bad_request(f"Object '{missing}' is missing in the request body")
    if api_version and api_version != rt.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected "
            f"API version ({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )


def _qos_class(spec: JSON) -> str:
    containers = [c for c in (spec.get("containers") or []) if isinstance(c, dict)]
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                return "Burstable"
    return "Guaranteed"


def _default_pod(obj: JSON) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    for key, value in (
        ("restartPolicy", "Always"),
        ("dnsPolicy", "ClusterFirst"),
        ("schedulerName", "default-scheduler"),
        ("terminationGracePeriodSeconds", 30),
        ("securityContext", {}),
        ("enableServiceLinks", True),
    ):
        spec.setdefault(key, value)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})


def apply_defaults(rt: ResourceType, obj: JSON) -> None:
    if rt is POD:
        _default_pod(obj)


def prepare_for_create(rt: ResourceType, obj: JSON, *, keep_status: bool) -> None:
    """Reset what the server owns on create; ``keep_status`` is for seeding tests."""
    if rt is POD and not (keep_status and "status" in obj):
        # podStrategy.PrepareForCreate discards any status the client sent.
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj.get("spec") or {})}
    if not rt.builtin:
        obj["metadata"]["generation"] = 1


def validate_create(rt: ResourceType, obj: JSON) -> list[FieldError]:
    errors: list[FieldError] = []
    name = obj["metadata"].get("name", "")
    if len(name) > 253 or not re.fullmatch(_SUBDOMAIN, name):
        errors.append(field_invalid("metadata.name", name, _SUBDOMAIN_MSG))
    if rt is POD:
        containers = (obj.get("spec") or {}).get("containers")
        if not containers:
            errors.append(field_required("spec.containers"))
        for i, c in enumerate(containers or []):
            for key in ("name", "image"):
                if not isinstance(c, dict) or not c.get(key):
                    errors.append(field_required(f"spec.containers[{i}].{key}"))
    elif rt is EVENT_V1:
        for key in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
            if not obj.get(key):
                errors.append(field_required(key))
        if obj.get("type") not in ("Normal", "Warning"):
            errors.append(
                ("FieldValueNotSupported", "type", f"Unsupported value: {obj.get('type')!r}")
            )
    elif rt is NAD:
        config = (obj.get("spec") or {}).get("config")
        if config is not None and not isinstance(config, str):
            errors.append(
                field_invalid("spec.config", config, "spec.config in body must be of type string")
            )
    return errors


def prepare_for_update(rt: ResourceType, new: JSON, old: JSON, subresource: str) -> None:
    """What each endpoint silently ignores, as podStrategy/podStatusStrategy do."""
    if rt is not POD:
        return
    if subresource == "status":
        new["spec"] = copy.deepcopy(old.get("spec"))
        refs = old["metadata"].get("ownerReferences")
        new["metadata"].pop("ownerReferences", None)
        if refs is not None:
            new["metadata"]["ownerReferences"] = copy.deepcopy(refs)
        # An old kubelet may drop qosClass: the server backfills it.
        status, old_status = new.get("status"), old.get("status") or {}
        if isinstance(status, dict) and not status.get("qosClass") and "qosClass" in old_status:
            status["qosClass"] = old_status["qosClass"]
    else:
        new["status"] = copy.deepcopy(old.get("status"))


def before_update(new_meta: JSON, old_meta: JSON) -> None:
    """rest.BeforeUpdate: fields an update keeps from the stored object."""
    for key in ("generation", "creationTimestamp"):
        new_meta.pop(key, None)
        if key in old_meta:
            new_meta[key] = old_meta[key]
    if not new_meta.get("uid"):
        new_meta["uid"] = old_meta.get("uid")
    if old_meta.get("deletionTimestamp"):
        new_meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
    if "deletionGracePeriodSeconds" in old_meta and "deletionGracePeriodSeconds" not in new_meta:
        new_meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]


_POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _mutable_view(spec: Any) -> Any:
    view = copy.deepcopy(spec) if isinstance(spec, dict) else {}
    for key in ("containers", "initContainers"):
        for c in view.get(key) or []:
            if isinstance(c, dict):
                c.pop("image", None)
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        view.pop(key, None)
    return view


def validate_update(rt: ResourceType, new: JSON, old: JSON, subresource: str) -> list[FieldError]:
    errors: list[FieldError] = []
    new_meta, old_meta = new["metadata"], old["metadata"]
    for key in ("uid", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if new_meta.get(key) != old_meta.get(key):
            errors.append(field_invalid(f"metadata.{key}", new_meta.get(key), "field is immutable"))
    if rt is POD and subresource == "status":
        new_qos = (new.get("status") or {}).get("qosClass")
        if new_qos != (old.get("status") or {}).get("qosClass"):
            errors.append(field_invalid("status.qosClass", new_qos, "field is immutable"))
    if rt is POD and subresource == "":
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        old_tols = old_spec.get("tolerations") or []
        if (
            _mutable_view(new_spec) != _mutable_view(old_spec)
            or (new_spec.get("tolerations") or [])[: len(old_tols)] != old_tols
        ):
            errors.append(field_forbidden("spec", _POD_UPDATE_MSG))
    return errors


def raise_invalid(rt: ResourceType, name: str, errors: list[FieldError]) -> None:
    if errors:
        raise invalid(rt.group, rt.kind, name, errors)


def bump_generation(rt: ResourceType, new: JSON, old: JSON) -> None:
    """Custom resources count spec changes in metadata.generation."""
    if rt.builtin:
        return
    changed = {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
        k: v for k, v in old.items() if k not in ("metadata", "status")
    }
    if changed:
        new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
