"""What Multus leaves on a node, written the way Multus writes it, for migration tests.

``write_cache(cni_dir, container_id, delegates)`` lays out Multus's cache of one container:
``<cni_dir>/<containerID>`` (the JSON of Go's ``[]*types.DelegateNetConf``, as
``saveDelegates`` marshals it: ``Conf``, ``ConfList``, ``Name``, ``ifnameRequest``,
``Bytes`` as base64) and, for each delegate given a result, libcni's result cache
``<cni_dir>/results/<network name>-<containerID>-<ifname>`` (``cniCacheV1``).

``multus_request(env, stdin)`` is the body Multus's shim POSTs to ``/cni``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Delegate:
    conf: dict[str, Any]  # the network's config as Multus ran it (a conf or a conflist)
    name: str = ""  # the NAD's namespace/name ("" for the cluster network from a file)
    ifname_request: str = ""
    ifname: str = ""  # the interface it got (for the result cache)
    result: dict[str, Any] | None = None
    capability_args: dict[str, Any] = field(default_factory=dict)


def _go_delegate(d: Delegate) -> dict[str, Any]:
    raw = json.dumps(d.conf).encode()
    is_list = "plugins" in d.conf
    conf = {} if is_list else d.conf
    conf_list = d.conf if is_list else {"cniVersion": "", "name": "", "plugins": None}
    out: dict[str, Any] = {
        "Conf": {"cniVersion": "", "name": "", "type": "", **conf},
        "ConfList": conf_list,
        "Name": d.name,
        "IsFilterV4Gateway": False,
        "IsFilterV6Gateway": False,
        "Bytes": base64.b64encode(raw).decode(),
    }
    if d.ifname_request:
        out["ifnameRequest"] = d.ifname_request
    return out


def write_cache(
    cni_dir: str | Path, container_id: str, delegates: Sequence[Delegate], netns: str = ""
) -> list[Path]:
    """Multus's cache of `container_id` under `cni_dir`; returns every file written."""
    cni_dir = Path(cni_dir)
    cni_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    main = cni_dir / container_id
    main.write_text(json.dumps([_go_delegate(d) for d in delegates]))
    main.chmod(0o600)
    written = [main]
    for d in delegates:
        if d.result is None:
            continue
        results = cni_dir / "results"
        results.mkdir(exist_ok=True, mode=0o700)
        path = results / f"{d.conf['name']}-{container_id}-{d.ifname}"
        path.write_text(
            json.dumps(
                {
                    "kind": "cniCacheV1",
                    "containerId": container_id,
                    "config": base64.b64encode(json.dumps(d.conf).encode()).decode(),
                    "ifName": d.ifname,
                    "networkName": d.conf["name"],
                    "netns": netns,
                    "capabilityArgs": d.capability_args,
                    "result": d.result,
                }
            )
        )
        written.append(path)
    return written


def multus_request(
    env: Mapping[str, str], stdin: bytes, interface_attributes: Mapping[str, Any] | None = None
) -> bytes:
    """Multus's shim's request body: Go's api.Request (`config` is a []byte: base64)."""
    body: dict[str, Any] = {"env": dict(env), "config": base64.b64encode(stdin).decode()}
    if interface_attributes is not None:
        body["interfaceAttributes"] = dict(interface_attributes)
    return json.dumps(body).encode()


def cache_files(cni_dir: str | Path, container_id: str) -> list[str]:
    """Multus's files of this container still under `cni_dir`."""
    cni_dir = Path(cni_dir)
    found = [str(cni_dir / container_id)] if (cni_dir / container_id).exists() else []
    results = cni_dir / "results"
    if results.is_dir():
        found += [str(p) for p in results.iterdir() if f"-{container_id}-" in p.name]
    return sorted(os.path.relpath(f, cni_dir) for f in found)
