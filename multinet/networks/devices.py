"""Device-plugin resources: a pod's device IDs -> its attachments, and NPWG device-info.

A NAD annotated `k8s.v1.cni.cncf.io/resourceName` needs one device of that resource per
attachment. The pod's IDs of the resource (what the kubelet assigned: cluster.podresources)
are sorted and handed out in plan order, one each, so two networks of the same resource get
two different devices. The ID reaches the delegate as Multus passes it: top-level
`deviceID` and `pciBusID` in every plugin, runtimeConfig `deviceID`, and runtimeConfig
`CNIDeviceInfoFile` (where a plugin declaring that capability writes its device-info).

Device-info (NPWG device-info spec 1.1.0): the device plugin writes
`<root>/dp/<resource, / as ->-<ID>-device.json`; the CNI plugin may write the file
multinet names for the attachment, `<root>/cni/<network>-<container ID>_<ifname>-device.json`.
The CNI plugin's wins; the object goes into network-status `device-info` unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence

from multinet.cni.chain import NetworkConfig
from multinet.cni.errors import InvalidConfig
from multinet.engine.plan import Attachment, Plan
from multinet.log import log
from multinet.record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEVICE_INFO_FILE_KEY = "CNIDeviceInfoFile"
MAX_DEVICE_INFO = 64 * 1024  # bytes: a device-info object is a few hundred


def _flat(text: str) -> str:
    return text.replace("/", "-")


def dp_path(root: str, resource: str, device_id: str) -> str:
    """The device plugin's device-info file (NPWG's getDPDeviceInfoPath)."""
    return os.path.join(root, "dp", f"{_flat(resource)}-{_flat(device_id)}-device.json")


def cni_path(root: str, network: str, container_id: str, ifname: str) -> str:
    """The file a CNI plugin writes for one attachment (Multus's name for it, under NPWG's
    GetCNIDeviceInfoPath)."""
    return os.path.join(root, "cni", _flat(f"{network}-{container_id}_{ifname}-device.json"))


def with_device(net: NetworkConfig, device_id: str) -> NetworkConfig:
    """`deviceID` and `pciBusID` in every plugin of the network, as Multus sets them."""
    plugins = tuple({**p, "deviceID": device_id, "pciBusID": device_id} for p in net.plugins)
    return replace(net, plugins=plugins)


def needs_devices(plan: Plan) -> bool:
    return any(a.k8s.resource_name and not a.k8s.device_id for a in plan.attachments)


def assign(plan: Plan, devices: Mapping[str, Sequence[str]], root: str, container_id: str) -> Plan:
    """The plan with a device for every attachment whose NAD names a resource (and whose
    selection named no `deviceID` itself); InvalidConfig (code 7) when the pod has fewer
    devices of a resource than attachments asking for one."""
    wanted: dict[str, int] = {}
    for a in plan.attachments:
        if a.k8s.resource_name and not a.k8s.device_id:
            wanted[a.k8s.resource_name] = wanted.get(a.k8s.resource_name, 0) + 1
    pools: dict[str, list[str]] = {}
    for resource, count in wanted.items():
        ids = sorted(devices.get(resource, ()))
        if len(ids) < count:
            names = [a.name for a in plan.attachments if a.k8s.resource_name == resource]
            raise InvalidConfig(
                f"resource {resource}: {count} network(s) need a device "
                f"({', '.join(names)}) but the pod was assigned {len(ids)}"
                + (f" ({', '.join(ids)})" if ids else ""),
                "request as many devices of the resource in the pod's resources.limits as "
                "networks that use it",
            )
        pools[resource] = ids
    out = []
    for a in plan.attachments:
        if a.k8s.resource_name and not a.k8s.device_id:
            a = _attach_device(a, pools[a.k8s.resource_name].pop(0), root, container_id)
        elif a.k8s.resource_name:
            a = _attach_device(a, a.k8s.device_id, root, container_id)
        out.append(a)
    return replace(plan, attachments=tuple(out))


def _attach_device(att: Attachment, device_id: str, root: str, container_id: str) -> Attachment:
    info_file = cni_path(root, att.network.name, container_id, att.ifname)
    return replace(
        att,
        network=with_device(att.network, device_id),
        runtime_config={
            **att.runtime_config,
            "deviceID": device_id,
            DEVICE_INFO_FILE_KEY: info_file,
        },
        k8s=att.k8s._replace(
            device_id=device_id,
            device_info_file=info_file,
            device_plugin_info_file=dp_path(root, att.k8s.resource_name, device_id),
        ),
    )


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DEVICE_INFO + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("device-info %s is unreadable: %s", path, e)
        return None
    try:
        obj = json.loads(data) if len(data) <= MAX_DEVICE_INFO else None
    except ValueError as e:
        log.warning("device-info %s is not JSON: %s", path, e)
        return None
    if not isinstance(obj, dict):
        log.warning("device-info %s is not a JSON object (or too large): ignored", path)
        return None
    return obj


def read_device_info(cni_file: str, dp_file: str) -> dict[str, Any] | None:
    """The CNI plugin's device-info when it wrote one, else the device plugin's."""
    for path in (cni_file, dp_file):
        if path:
            obj = _load(path)
            if obj is not None:
                return obj
    return None


def remove_device_info(cni_file: str) -> None:
    """The attachment's CNI device-info file goes with it (as Multus's CleanDeviceInfoForCNI);
    the device plugin's file is the device plugin's."""
    if cni_file:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cni_file)
