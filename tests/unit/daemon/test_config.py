"""The daemon's configuration file and how its keys overlay a request's netconf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multinet.cni.errors import InvalidConfig
from multinet.daemon import config
from multinet.daemon.service import overlay


def test_defaults_and_node_name_from_the_environment() -> None:
    conf = config.load({}, {"NODE_NAME": "node-7"})
    assert conf.socket_path == "/run/multinet/multinet.sock"
    assert conf.node_name == "node-7"
    assert conf.cni_config_dir == "/etc/cni/net.d"
    assert conf.metrics_address is None
    assert conf.generate_config and not conf.cleanup_config_on_exit
    assert conf.overrides == {}
    assert conf.cni_dir == "/var/lib/cni/multinet"


def test_thin_keys_become_overrides_daemon_keys_do_not() -> None:
    conf = config.load(
        {
            "cniVersion": "1.0.0",
            "name": "n",
            "nodeName": "explicit",
            "metricsAddress": "[::1]:9091",
            "multusMasterCNI": "10-calico.conflist",
            "kubeconfig": "/k",
            "cniDir": "/state",
            "logLevel": "debug",
        },
        {"NODE_NAME": "ignored"},
    )
    assert conf.node_name == "explicit"
    assert conf.metrics_address == ("::1", 9091)
    assert conf.primary_config == "10-calico.conflist"
    assert conf.overrides == {"kubeconfig": "/k", "cniDir": "/state", "logLevel": "debug"}
    assert conf.cni_dir == "/state" and conf.log_level == "debug"


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"metricsAddress": "9091"}, "metricsAddress: '9091' is not HOST:PORT"),
        ({"metricsAddress": "host:99999"}, "is not HOST:PORT"),
        ({"cleanupConfigOnExit": "yes"}, 'cleanupConfigOnExit: expected boolean, got "yes"'),
        ({"daemonSocketPath": ""}, "daemonSocketPath: must not be empty"),
        ({"logLevel": 7}, "logLevel: expected string, got 7"),
        ({"delegates": {}}, "delegates: expected array"),
    ],
)
def test_invalid_configuration_names_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        config.load(raw, {})
    assert message in str(e.value)


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="cannot read"):
        config.load_file(str(tmp_path / "missing.json"), {})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InvalidConfig, match="not valid JSON"):
        config.load_file(str(bad), {})


def test_overlay_gives_the_daemon_keys_precedence() -> None:
    out = json.loads(overlay(b'{"cniDir": "/req", "name": "n"}', {"cniDir": "/daemon"}))
    assert out == {"cniDir": "/daemon", "name": "n"}
    assert overlay(b"{not json", {"cniDir": "/d"}) == b"{not json"
    assert overlay(b"[1]", {"cniDir": "/d"}) == b"[1]"
