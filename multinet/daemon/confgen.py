"""Write 00-multinet.conflist, the runtime's entry to thick mode, next to the primary config.

The primary is the cluster network's own config in cniConfigDir: the one named
by `primaryConfig`, else the first `.conflist`/`.conf`/`.json` by name that is
not a multinet or Multus config (libcni's choice, minus ourselves). The
generated conflist has one plugin, `multinet-shim`, pointing at the primary
(`clusterNetwork`) and carrying the daemon's thin keys so that the shim's
in-process fallback does what the daemon would. It is written atomically, only
when its content changes, only once `readinessindicatorfile` exists, and only
while multinetd answers on its socket: the runtime never calls a shim that has no
daemon yet because of a config the daemon wrote.

When the primary is gone for WITHDRAW_POLLS polls in a row the file is withdrawn (a
multinet config naming a cluster network that is not there fails every ADD,
multus-cni #1155), and written again when it comes back (without asking the socket
again: this daemon runs). A primary that cannot be read (flannel's `cp -f` writes in
place: a poll may see half a file) keeps the file as it is. When another agent removes,
renames or rewrites the file (a primary CNI in exclusive mode: Cilium renames it
`*.cilium_bak`, multus-cni #972), the next pass notices it, logs it, counts it, posts an
Event on the node and puts the file back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from typing import Any, Protocol

from multinet.cni import strictjson
from multinet.daemon.config import DaemonConfig
from multinet.daemon.metrics import DaemonMetrics
from multinet.shim import client

log = logging.getLogger("multinet.daemon")

OWN_NAME = "00-multinet.conflist"
EXTENSIONS = (".conflist", ".conf", ".json")
SELF_TYPES = frozenset({"multinet", "multinet-shim", "multus", "multus-shim"})
DEFAULT_VERSION = "1.0.0"


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            conf = strictjson.loads(f.read())  # libcni's rules: a primary it would refuse
    except (OSError, ValueError):
        return None
    return conf if isinstance(conf, dict) else None


def _types(conf: dict[str, Any]) -> set[str]:
    plugins = conf.get("plugins")
    items = plugins if isinstance(plugins, list) else [conf]
    return {p["type"] for p in items if isinstance(p, dict) and isinstance(p.get("type"), str)}


def find_primary(conf_dir: str, explicit: str = "") -> tuple[str, dict[str, Any]] | None:
    """(path, parsed config) of the primary CNI config, or None when there is none yet."""
    if explicit:
        path = explicit if os.path.isabs(explicit) else os.path.join(conf_dir, explicit)
        conf = _load(path)
        return (path, conf) if conf is not None else None
    try:
        names = sorted(os.listdir(conf_dir))
    except OSError:
        return None
    for name in names:
        if name == OWN_NAME or name.startswith(".") or not name.endswith(EXTENSIONS):
            continue
        path = os.path.join(conf_dir, name)
        conf = _load(path)
        if conf is None:
            log.warning("skipping %s: not a JSON object", path)
            continue
        types = _types(conf)
        if not types or types & SELF_TYPES:
            continue  # not a plugin config, or ourselves (a loop)
        return path, conf
    return None


def primary_absent(conf_dir: str, explicit: str = "") -> bool:
    """Whether no file could be the primary at all, rather than one that cannot be read
    yet (flannel's `cp -f` writes in place: a poll may see half a file)."""
    if explicit:
        return not os.path.exists(
            explicit if os.path.isabs(explicit) else os.path.join(conf_dir, explicit)
        )
    try:
        names = os.listdir(conf_dir)
    except OSError:
        return True
    for name in names:
        if name == OWN_NAME or name.startswith(".") or not name.endswith(EXTENSIONS):
            continue
        conf = _load(os.path.join(conf_dir, name))
        if conf is None or (_types(conf) and not _types(conf) & SELF_TYPES):
            return False  # unreadable now, or a primary after all (written meanwhile)
    return True


# Polls in a row the primary must be truly absent before the file is withdrawn: an agent
# that replaces its config (remove, then write) is not a cluster network gone.
WITHDRAW_POLLS = 3

HOST_ONLY_ABSENT = frozenset({"hostRoot"})


def fallback_keys(config: DaemonConfig) -> dict[str, Any]:
    """What the shim's in-process fallback needs beside the daemon's keys: the kubeconfig
    the daemon keeps on the host with its own credentials (daemon.hostcreds)."""
    return {"kubeconfig": config.fallback_kubeconfig} if config.fallback_kubeconfig else {}


def render(config: DaemonConfig, primary_path: str, primary: dict[str, Any]) -> dict[str, Any]:
    plugins = primary.get("plugins")
    caps: dict[str, bool] = {}
    for p in plugins if isinstance(plugins, list) else [primary]:
        declared = p.get("capabilities") if isinstance(p, dict) else None
        if isinstance(declared, dict):
            caps.update({k: True for k, v in declared.items() if v is True})
    plugin: dict[str, Any] = {"type": "multinet-shim", "daemonSocketPath": config.socket_path}
    # hostRoot names a directory inside multinetd's container: the thin fallback on the host
    # runs there already (the daemon overlays it on every request it serves).
    plugin.update({k: v for k, v in config.overrides.items() if k not in HOST_ONLY_ABSENT})
    plugin.update(fallback_keys(config))
    if "delegates" not in plugin and "clusterNetwork" not in plugin:
        plugin["clusterNetwork"] = primary_path
    if caps:
        plugin["capabilities"] = {**caps, **plugin.get("capabilities", {})}
    version = config.cni_version or primary.get("cniVersion") or DEFAULT_VERSION
    name = config.name
    if config.override_network_name and isinstance(primary.get("name"), str) and primary["name"]:
        name = primary["name"]  # Multus's overrideNetworkName
    return {"cniVersion": version, "name": name, "plugins": [plugin]}


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    # A dot name without a config extension: the runtime never loads a half-written file.
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def install_user_config(config: DaemonConfig) -> str:
    """Multus's `multusConfigFile` (a path): the file copied into cniConfigDir under its own
    name, atomically, as the runtime's config; returns the path written."""
    source = config.user_config_file
    target = os.path.join(config.cni_config_dir, os.path.basename(source))
    with open(source, "rb") as f:
        data = f.read()
    if os.path.abspath(source) != os.path.abspath(target):
        write_atomic(target, data)
    log.info("installed %s as %s (multusConfigFile)", source, target)
    return target


class NodeEvents(Protocol):
    """Where the writer reports on the node (cluster.cache.CachedCluster)."""

    def emit_node_event(self, node: str, reason: str, message: str, warning: bool = False) -> None:
        """Best effort: an event on the node."""
        ...


RESTORED_REASON = "CNIConfigRestored"
# An agent that renames the file each time it sees it fights back every pass: every put
# back is logged and counted, but the node gets one Event per minute at most.
EVENT_INTERVAL = 60.0
PROBE_TIMEOUT = 2.0  # seconds for the daemon's own /healthz


class ConfigWriter:
    """Keeps 00-multinet.conflist in step with the primary config and the daemon (polled).
    `events`: where a file put back is reported (None: no API server, logged only)."""

    def __init__(
        self, config: DaemonConfig, metrics: DaemonMetrics, events: NodeEvents | None = None
    ) -> None:
        self.config = config
        self.path = os.path.join(config.cni_config_dir, OWN_NAME)
        self.problem = "not generated yet"
        self.metrics = metrics
        self.events = events
        self._lock = threading.Lock()
        self._written: bytes | None = None  # what this daemon last wrote, or found current
        self._since: float | None = None  # since when (time.time()) current without a break
        self._absent = 0  # polls in a row that found no primary at all
        self._unreadable = False  # the primary could not be read at the last poll (logged)
        self._served = False  # this daemon answered on its socket once (it runs)
        self._last_event = -EVENT_INTERVAL

    def _read_own(self) -> bytes | None:
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def sync(self) -> bool:
        """One pass: write the file if it is missing or stale, withdraw it if the primary
        is gone. True when it is current."""
        with self._lock:
            indicator = self.config.readiness_indicator_file
            if indicator and not os.path.exists(indicator):
                self.problem = f"waiting for the readiness indicator file {indicator}"
                self._since = None
                return False
            primary_dir, explicit = self.config.primary_dir, self.config.primary_config
            found = find_primary(primary_dir, explicit)
            if found is None:
                where = explicit or f"a CNI config in {primary_dir}"
                if not primary_absent(primary_dir, explicit):
                    # Being written (or broken): what is in place stays, for now.
                    if not self._unreadable:
                        log.warning(
                            "the primary network's config (%s) cannot be read: %s kept as it is",
                            where,
                            self.path,
                        )
                    self._unreadable = True
                    return self.current
                self._absent += 1
                self.problem = f"waiting for the primary network: {where} not found"
                if self._absent >= WITHDRAW_POLLS:
                    self._withdraw(where)
                return False
            self._absent, self._unreadable = 0, False
            data = (json.dumps(render(self.config, *found), indent=2) + "\n").encode()
            own = self._read_own()
            if own == data:
                if self._since is None:  # found current: unbroken since it was written
                    self._since = self._mtime()
                self._written, self.problem = data, ""
                return True
            self._since = None  # stale, gone or replaced: the runtime may not have used it
            # The gate at first start only: once this daemon served, it runs (a probe of
            # a loaded daemon timing out must not keep its config withdrawn).
            if not self._served and not self._serving():
                self.problem = f"waiting for multinetd to serve {self.config.socket_path}"
                return False
            self._served = True
            change = self._change(own)
            try:
                write_atomic(self.path, data)
            except OSError as e:
                self.problem = f"cannot write {self.path}: {e}"
                log.error("%s", self.problem)
                return False
            self._written, self.problem = data, ""
            self._since = time.time()
            if change:
                self._restored(change)
            else:
                log.info("wrote %s (primary network: %s)", self.path, found[0])
            return True

    def current_since(self) -> float | None:
        """Since when (time.time()) the file has been current without a break seen, None
        while it is not: until then the runtime may have called the cluster network
        directly, for pods no journal of multinet's names (daemon.gc)."""
        return self._since if self.current else None

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime
        except OSError:
            return None

    def _serving(self) -> bool:
        """The daemon answers on its socket, as the shim will reach it. Any complete
        answer counts: a daemon run as another user than root is answered 403."""
        try:
            client.request(self.config.socket_path, "GET", "/healthz", timeout=PROBE_TIMEOUT)
        except client.DaemonUnavailable:
            return False
        return True

    def _withdraw(self, where: str) -> None:
        """No primary: no multinet config naming it (an ADD through it could only fail)."""
        self._written = self._since = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
            log.warning(
                "withdrew %s: the cluster network's config (%s) is gone; it is written "
                "again when that config is back",
                self.path,
                where,
            )

    def _change(self, own: bytes | None) -> str:
        """What another agent did to the file this daemon wrote: '' (nothing: never
        written yet, or stale because the primary changed), 'removed' or 'modified'."""
        if self._written is None or own == self._written:
            return ""
        return "removed" if own is None else "modified"

    def _renamed_to(self) -> str:
        """The sibling holding what this daemon wrote (`00-multinet.conflist.cilium_bak`),
        if the file was renamed rather than removed; ''."""
        directory = os.path.dirname(self.path)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return ""
        for name in names:
            if name.startswith(OWN_NAME + "."):
                with contextlib.suppress(OSError), open(os.path.join(directory, name), "rb") as f:
                    if f.read() == self._written:
                        return name
        return ""

    def _restored(self, change: str) -> None:
        renamed = self._renamed_to() if change == "removed" else ""
        what = {"removed": "removed", "modified": "rewritten"}[change]
        if renamed:
            what = f"renamed to {renamed}"
        message = (
            f"{self.path} was {what} by another agent and has been put back; if this "
            "repeats, a primary CNI plugin in exclusive mode owns the directory (Cilium: "
            "cni.exclusive=false)"
        )
        log.warning("%s", message, extra={"fields": {"change": change}})
        self.metrics.config_restored.inc(change)
        now = time.monotonic()
        if self.events is None or not self.config.node_name:
            return
        if now - self._last_event < EVENT_INTERVAL:
            return  # logged and counted; the node's last Event says it already
        self._last_event = now
        self.events.emit_node_event(self.config.node_name, RESTORED_REASON, message, warning=True)

    @property
    def current(self) -> bool:
        return not self.problem and self._read_own() is not None

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set (a thread's target)."""
        while True:
            try:
                self.sync()
            except Exception:  # the loop must survive anything a directory can throw at it
                log.exception("config generation failed")
            if stop.wait(self.config.conf_poll_interval):
                return

    def remove(self) -> None:
        with self._lock, contextlib.suppress(FileNotFoundError):
            self._written = self._since = None
            self._served = False  # stopping: nothing written again without the gate
            os.unlink(self.path)
            log.info("removed %s", self.path)
        self.problem = "removed on shutdown"
