"""Network configurations (single or conflist) and running them as plugin chains.

Mirrors libcni: per-plugin config gets `name`, `cniVersion`, the capability-filtered
`runtimeConfig` and `prevResult`; ADD/CHECK run in order, DEL in reverse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from multinet.cni import version
from multinet.cni.errors import CNIError, DelegateError, InvalidConfig, PluginNotFound
from multinet.cni.exec import Invocation, check_type, find_plugin, invoke
from multinet.cni.strictjson import JSONError, check_depth
from multinet.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GC_KEY = "cni.dev/valid-attachments"


@record(frozen=True)
class NetworkConfig:
    """A network: a name, a version and one or more plugins (a conflist)."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    disable_gc: bool = False
    is_list: bool = True

    @property
    def type(self) -> str:
        return str(self.plugins[0]["type"])

    def to_dict(self) -> dict[str, Any]:
        """The config as a runtime would store it (always a conflist)."""
        out: dict[str, Any] = {
            "cniVersion": self.cni_version,
            "name": self.name,
            "plugins": [dict(p) for p in self.plugins],
        }
        if self.disable_check:
            out["disableCheck"] = True
        if self.disable_gc:
            out["disableGC"] = True
        return out

    def capabilities(self) -> set[str]:
        caps: set[str] = set()
        for p in self.plugins:
            c = p.get("capabilities")
            if isinstance(c, dict):
                caps.update(k for k, v in c.items() if v is True)
        return caps


def _where(where: str, key: str) -> str:
    return f"{where}: {key}" if where else key


def copied(value: Any) -> Any:
    """A deep copy of a JSON value (copy.deepcopy's, without importing `copy` and `weakref`:
    thin mode's DEL loads each journaled network's config)."""
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copied(v) for v in value]
    return value


def load(
    raw: Mapping[str, Any],
    *,
    where: str = "",
    default_name: str | None = None,
    default_version: str | None = None,
) -> NetworkConfig:
    """Parse a config or conflist; `where` prefixes error messages (e.g. a NAD's name)."""
    if not isinstance(raw, Mapping):
        raise InvalidConfig(f"{where or 'network config'} must be a JSON object")
    try:  # before anything walks it recursively (deepcopy below, json.dumps later)
        check_depth(dict(raw))
    except JSONError as e:
        raise InvalidConfig(f"{where or 'network config'} is {e}") from None
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise InvalidConfig(f"{_where(where, 'name')} is missing or not a non-empty string")
    cni_version = raw.get("cniVersion", default_version)
    versions = raw.get("cniVersions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise InvalidConfig(f"{_where(where, 'cniVersions')} must be a list of strings")
        # libcni counts the config's own cniVersion among the candidates.
        own = raw.get("cniVersion")
        candidates = [*versions, own] if isinstance(own, str) else versions
        cni_version = version.negotiate(candidates) or cni_version
    if not isinstance(cni_version, str) or not cni_version:
        raise InvalidConfig(f"{_where(where, 'cniVersion')} is missing or not a string")
    try:
        version.parse(cni_version)
    except InvalidConfig as e:
        raise InvalidConfig(f"{_where(where, 'cniVersion')}: {e.msg}") from None
    flags: dict[str, bool] = {}
    for flag in ("disableCheck", "disableGC"):
        value = raw.get(flag, False)
        # libcni also accepts the strings "true"/"false" (any case).
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidConfig(f"{_where(where, flag)} must be a boolean, got {raw[flag]!r}")
        flags[flag] = value
    if "plugins" in raw:
        plugins = raw["plugins"]
        if not isinstance(plugins, list) or not plugins:
            raise InvalidConfig(f"{_where(where, 'plugins')} must be a non-empty list")
        is_list = True
    else:
        plugins = [raw]
        is_list = False
    checked = []
    for i, p in enumerate(plugins):
        label = f"plugins[{i}]" if is_list else "config"
        if not isinstance(p, dict):
            raise InvalidConfig(f"{_where(where, label)} must be a JSON object")
        if "type" not in p:
            raise InvalidConfig(f"{_where(where, label)} has no 'type'")
        try:
            check_type(p["type"])
        except InvalidConfig as e:
            raise InvalidConfig(f"{_where(where, label)}: {e.msg}") from None
        caps = p.get("capabilities")
        if caps is not None and not isinstance(caps, dict):
            raise InvalidConfig(f"{_where(where, label + '.capabilities')} must be an object")
        checked.append(copied(p))
    return NetworkConfig(
        name=name,
        cni_version=cni_version,
        plugins=tuple(checked),
        disable_check=flags["disableCheck"],
        disable_gc=flags["disableGC"],
        is_list=is_list,
    )


def plugin_config(
    net: NetworkConfig,
    plugin: Mapping[str, Any],
    runtime_config: Mapping[str, Any],
    prev_result: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """libcni's buildOneConfig: inject name, version, runtimeConfig and prevResult.

    The injected keys come last: Go's decoder matches keys case-insensitively and keeps
    the last, so a plugin's own "Name" or "NAME" after its "name" would otherwise be the
    network's name to it (host-local names its directory under dataDir after it: a
    "../.." there writes elsewhere). libcni re-encodes a map, keys sorted, and "name"
    sorts after every other spelling of it."""
    injected: dict[str, Any] = {"name": net.name, "cniVersion": net.cni_version}
    caps = plugin.get("capabilities") or {}
    rc = {k: v for k, v in runtime_config.items() if caps.get(k) is True}
    if rc:
        injected["runtimeConfig"] = rc
    if prev_result is not None:
        injected["prevResult"] = prev_result
    conf = {k: v for k, v in plugin.items() if k not in injected}
    conf.update(injected)
    return conf


def add(net: NetworkConfig, inv: Invocation, runtime_config: Mapping[str, Any]) -> dict[str, Any]:
    prev: dict[str, Any] | None = None
    for plugin in net.plugins:
        out = invoke(plugin["type"], "ADD", plugin_config(net, plugin, runtime_config, prev), inv)
        if out is None:
            raise DelegateError(f"{plugin['type']} ADD printed no result")
        prev = out
    assert prev is not None
    return prev


def delete(
    net: NetworkConfig,
    inv: Invocation,
    runtime_config: Mapping[str, Any],
    prev_result: Mapping[str, Any] | None,
) -> None:
    """DEL every plugin in reverse; a missing plugin has nothing to delete.

    Unlike libcni, keep going after a failure so that one broken plugin does not
    leak the others; the first error is raised at the end.
    """
    if not version.at_least(net.cni_version, "0.4.0"):
        prev_result = None  # libcni passes no prevResult to DEL before 0.4.0
    first: CNIError | None = None
    for plugin in reversed(net.plugins):
        try:
            invoke(
                plugin["type"], "DEL", plugin_config(net, plugin, runtime_config, prev_result), inv
            )
        except PluginNotFound:
            continue
        except CNIError as e:
            first = first or e
    if first is not None:
        raise first


def check(
    net: NetworkConfig,
    inv: Invocation,
    runtime_config: Mapping[str, Any],
    prev_result: Mapping[str, Any] | None,
) -> None:
    if net.disable_check or not version.at_least(net.cni_version, "0.4.0"):
        return
    for plugin in net.plugins:
        invoke(
            plugin["type"], "CHECK", plugin_config(net, plugin, runtime_config, prev_result), inv
        )


def gc_supported(net: NetworkConfig) -> bool:
    """Whether GC is sent to this network: it speaks CNI 1.1.0 and does not disable it."""
    return not net.disable_gc and version.at_least(net.cni_version, "1.1.0")


def gc(net: NetworkConfig, inv: Invocation, valid: Sequence[Mapping[str, str]]) -> None:
    if not gc_supported(net):
        return
    for plugin in net.plugins:
        conf = plugin_config(net, plugin, {}, None)
        conf[GC_KEY] = [dict(v) for v in valid]
        invoke(plugin["type"], "GC", conf, inv)


def status(net: NetworkConfig, inv: Invocation) -> None:
    """STATUS each plugin that speaks 1.1.0; older ones are ready when they exist."""
    for plugin in net.plugins:
        if version.at_least(net.cni_version, "1.1.0"):
            invoke(plugin["type"], "STATUS", plugin_config(net, plugin, {}, None), inv)
        else:
            find_plugin(plugin["type"], inv.path, inv.root)
