"""Multus's cache of the containers it attached, read as a journal (engine.ports.LegacyRecords).

So that the pods Multus attached before a node switched to multinet are removed whole
when their DEL reaches multinet (the pod object may be gone by then: nothing else says
which secondary networks they had, and their addresses would leak).

Multus's layout, under its `cniDir` (default /var/lib/cni/multus):

- `<cniDir>/<containerID>`: the JSON list of the delegates it ran (`saveDelegates`), in
  order, the cluster network first. Each is Go's `types.DelegateNetConf`: `Bytes` (the
  network's config as run, base64: Go's []byte), `Conf`/`ConfList` (the same, parsed),
  `Name` (the NAD's `namespace/name`), `ifnameRequest`, `macRequest`, `ipRequest`, ...
- `<cniDir>/results/<network name>-<containerID>-<ifname>`: libcni's result cache of each
  delegate (Multus gives libcni its cniDir as cache directory): `{"kind": "cniCacheV1",
  "result": {...}, "capabilityArgs": {...}, ...}`.

Interface names as Multus gives them (`getIfname`): the delegate's `ifnameRequest`, else
CNI_IFNAME for the first (the master plugin), else `net<position>`.
"""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import Sequence

from multinet.cni.errors import IOFailure
from multinet.engine.journal import ADDED, Entry, Journal
from multinet.log import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MULTUS_CNI_DIR = "/var/lib/cni/multus"  # Multus's default cniDir
RESULTS = "results"


def _object(raw: bytes | str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def delegate_config(delegate: dict[str, Any]) -> dict[str, Any] | None:
    """The network config Multus ran for this delegate: its raw `Bytes`, else the parsed
    `ConfList` (when it has plugins) or `Conf`."""
    raw = delegate.get("Bytes")
    if isinstance(raw, str) and raw:
        try:
            import base64  # only a DEL of a pod Multus attached pays

            conf = _object(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            conf = None
        if conf is not None and ("type" in conf or "plugins" in conf):
            return conf
    conf_list = delegate.get("ConfList")
    if isinstance(conf_list, dict) and conf_list.get("plugins"):
        return dict(conf_list)
    conf = delegate.get("Conf")
    if isinstance(conf, dict) and conf.get("type"):
        return dict(conf)
    return None


def interface_name(delegate: dict[str, Any], ifname: str, index: int) -> str:
    """Multus's getIfname: the request, the runtime's name for the master plugin, net<i>."""
    requested = delegate.get("ifnameRequest")
    if isinstance(requested, str) and requested:
        return requested
    return ifname if index == 0 else f"net{index}"


class MultusCache:
    """Multus's cache in each of `dirs` (the first that holds the container wins)."""

    def __init__(self, dirs: Sequence[str]) -> None:
        self.dirs = tuple(dict.fromkeys(d for d in dirs if d))

    def _find(self, container_id: str) -> str | None:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            return None
        for d in self.dirs:
            if os.path.isfile(os.path.join(d, container_id)):
                return d
        return None

    def _cached(self, directory: str, names: Sequence[str], cid: str, ifname: str) -> Any:
        for name in names:
            path = os.path.join(directory, RESULTS, f"{name}-{cid}-{ifname}")
            try:
                with open(path, "rb") as f:
                    cached = _object(f.read())
            except OSError:
                continue
            if cached is not None:
                return cached
        return None

    def load(self, container_id: str, ifname: str, netns: str, cni_version: str) -> Journal | None:
        directory = self._find(container_id)
        if directory is None:
            return None
        path = os.path.join(directory, container_id)
        try:
            with open(path, "rb") as f:
                delegates = json.loads(f.read())
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
            raise IOFailure(f"Multus's cache {path} is unreadable", str(e)) from None
        if not isinstance(delegates, list):
            raise IOFailure(f"Multus's cache {path} is not a list of delegates")
        journal = Journal(
            container_id=container_id, ifname=ifname, netns=netns, cni_version=cni_version
        )
        journal.complete = True
        for index, delegate in enumerate(delegates):
            entry = self._entry(directory, path, container_id, ifname, index, delegate)
            if entry is not None and not entry.config.get("cniVersion") and cni_version:
                # As Multus does: a delegate without one takes the DEL's netconf's.
                entry.config["cniVersion"] = cni_version
            if entry is not None:
                journal.entries.append(entry)
        log.info(
            "DEL %s: no journal of multinet's; removing the %d network(s) Multus attached (%s)",
            container_id,
            len(journal.entries),
            path,
        )
        return journal

    def _entry(
        self, directory: str, path: str, cid: str, ifname: str, index: int, delegate: Any
    ) -> Entry | None:
        conf = delegate_config(delegate) if isinstance(delegate, dict) else None
        if conf is None:
            log.warning("%s: delegate %d has no usable network config: skipped", path, index)
            return None
        assert isinstance(delegate, dict)
        conf_name = _text(conf.get("name"))
        nad = _text(delegate.get("Name"))
        if not conf.get("cniVersion") and cni_version_of(delegate):
            conf["cniVersion"] = cni_version_of(delegate)
        name = nad or conf_name or f"delegate{index}"
        dev = interface_name(delegate, ifname, index)
        # libcni keys its cache by the config's name; Multus's own gateway edits of that
        # cache use the NAD's name without its namespace.
        names = [n for n in dict.fromkeys([conf_name, nad.rpartition("/")[2]]) if n]
        cached = self._cached(directory, names, cid, dev)
        result = cached.get("result") if isinstance(cached, dict) else None
        caps = cached.get("capabilityArgs") if isinstance(cached, dict) else None
        return Entry(
            name=name,
            ifname=dev,
            config=conf,
            runtime_config=dict(caps) if isinstance(caps, dict) else {},
            state=ADDED,
            result=result if isinstance(result, dict) else None,
            default=index == 0,
        )

    def remove(self, journal: Journal) -> None:
        cid = journal.container_id
        directory = self._find(cid)
        if directory is None:
            return
        import glob  # ~7 million instructions: only for a pod Multus attached

        targets = [os.path.join(directory, cid)]
        for entry in journal.entries:
            pattern = f"*-{glob.escape(cid)}-{glob.escape(entry.ifname)}"
            targets += glob.glob(os.path.join(glob.escape(directory), RESULTS, pattern))
        for target in targets:
            try:
                os.unlink(target)
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("cannot remove Multus's cache file %s: %s", target, e)


def cni_version_of(delegate: dict[str, Any]) -> str:
    """The cniVersion Multus parsed for a delegate (its ConfList's, else its Conf's)."""
    for key in ("ConfList", "Conf"):
        part = delegate.get(key)
        if isinstance(part, dict) and isinstance(part.get("cniVersion"), str):
            version = part["cniVersion"]
            if version:
                return str(version)
    return ""
