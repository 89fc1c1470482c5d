"""A cluster without Kubernetes: Pods and NADs read from a directory of manifests.

Every `*.yaml`, `*.yml` and `*.json` file below the directory is read (several YAML
documents per file); kinds other than Pod and NetworkAttachmentDefinition are
ignored. network-status and events are written under a state directory (the
manifests themselves are never modified): `multinetctl status` reads them back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from multinet.cluster.base import NAD, Pod
from multinet.cluster.objects import ObjectError, nad_from_object, pod_from_object
from multinet.cluster.records import StatusRecords
from multinet.cni.errors import InvalidConfig
from multinet.cni.strictjson import JSONError, loads

SUFFIXES = (".yaml", ".yml", ".json")


def _documents(path: str) -> Iterator[Any]:
    """The documents of one file: a `.json` file is one strict JSON document (as the API
    server would read it), a YAML file any number."""
    import yaml  # only this source needs it

    # The pure-Python loader: LibYAML's (CSafeLoader) recurses in C and crashes the
    # process on a deeply nested document; this one raises RecursionError.
    loader = yaml.SafeLoader
    try:
        with open(path, "rb") as f:
            if path.endswith(".json"):
                yield loads(f.read())
            else:
                yield from yaml.load_all(f, Loader=loader)
    except JSONError as e:
        raise InvalidConfig(f"manifest {path} is not valid JSON: {e}") from None
    except yaml.YAMLError as e:
        raise InvalidConfig(f"manifest {path} is not valid YAML", str(e)) from None
    except RecursionError:  # the YAML composer recurses per nesting level
        raise InvalidConfig(f"manifest {path} is nested too deep") from None
    except ValueError as e:  # a scalar its constructor refuses: a 5000-digit int, 2001-13-45
        raise InvalidConfig(f"manifest {path} is not valid YAML", str(e)) from None
    except OSError as e:
        raise InvalidConfig(f"cannot read manifest {path}", str(e)) from None


class ManifestCluster:
    def __init__(self, directory: str, state_dir: str) -> None:
        self.directory = directory
        self.records = StatusRecords(state_dir)
        self._pods: dict[tuple[str, str], Pod] = {}
        self._nads: dict[tuple[str, str], NAD] = {}
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        # Checked on first use, not construction: a DEL answered by the journal
        # must not fail because the manifests are gone.
        if not os.path.isdir(self.directory):
            raise InvalidConfig(f"manifests directory {self.directory} does not exist")
        for root, _, files in sorted(os.walk(self.directory)):
            for name in sorted(files):
                if name.endswith(SUFFIXES):
                    path = os.path.join(root, name)
                    for doc in _documents(path):
                        self._add(doc, path)
        self._loaded = True

    def _add(self, doc: Any, path: str) -> None:
        if not isinstance(doc, Mapping):
            return
        kind = doc.get("kind")
        if kind not in ("Pod", "NetworkAttachmentDefinition"):
            return
        try:
            if kind == "Pod":
                pod = pod_from_object(doc, default_namespace="default")
                self._pods[(pod.namespace, pod.name)] = pod
            else:
                nad = nad_from_object(doc, default_namespace="default")
                self._nads[(nad.namespace, nad.name)] = nad
        except ObjectError as e:
            raise InvalidConfig(f"manifest {path}: {e}") from None

    def get_pod(self, namespace: str, name: str, uid: str = "") -> Pod | None:
        self._load()
        return self._pods.get((namespace, name))

    def get_nad(self, namespace: str, name: str) -> NAD | None:
        self._load()
        return self._nads.get((namespace, name))

    def pods(self) -> list[Pod]:
        self._load()
        return list(self._pods.values())

    def set_network_status(self, pod: Pod, status: list[dict[str, Any]]) -> None:
        self.records.write_status(pod.namespace, pod.name, status)

    def emit_event(self, pod: Pod, reason: str, message: str, warning: bool = False) -> None:
        self.records.append_event(
            {
                "time": time.time(),
                "namespace": pod.namespace,
                "pod": pod.name,
                "type": "Warning" if warning else "Normal",
                "reason": reason,
                "message": message,
            }
        )
