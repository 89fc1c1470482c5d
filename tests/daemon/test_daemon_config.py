"""The daemon's configuration file, and the shim's own protocol helpers (no root needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multinet import shim
from multinet.cni.errors import InvalidConfig
from multinet.daemon import config, launcher
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
        ({"logLevel": "loud"}, 'logLevel: "loud" is not one of'),
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


@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2.5, true, null, "\\u00e9"], "b": {"c": -1e3}}', "  [] ", '"x"', "NaN"],
)
def test_shim_json_decoder_agrees_with_json(text: str) -> None:
    got, want = shim.loads(text), json.loads(text)
    assert got == want or (got != got and want != want)  # NaN


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "[1,]"])
def test_shim_json_decoder_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        shim.loads(text)


def test_shim_request_encoding_round_trips_any_bytes() -> None:
    env = {"CNI_ARGS": 'K8S_POD_NAME=a;X="q"\\', "UNICODE": "é\n"}
    stdin = b'{"cniVersion": "1.0.0", "raw": "\xff\xfe"}'
    data = json.loads(shim.encode_request(env, stdin))
    assert data["env"] == env
    assert data["stdin"].encode("utf-8", "surrogateescape") == stdin


def test_shim_finds_the_socket_path() -> None:
    assert shim.socket_path(b'{"daemonSocketPath": "/x.sock"}') == "/x.sock"
    assert shim.socket_path(b'{"daemonSocketPath": 3}') == shim.DEFAULT_SOCKET
    assert shim.socket_path(b"not json") == shim.DEFAULT_SOCKET
    assert shim.socket_path(b"") == shim.DEFAULT_SOCKET


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"SSH-2.0-OpenSSH\r\n\r\n",
    ],
)
def test_shim_treats_incomplete_answers_as_no_answer(answer: bytes) -> None:
    with pytest.raises(shim.DaemonUnavailable):
        shim._parse_answer(answer)


def test_shim_without_a_socket_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(shim.DaemonUnavailable, match="cannot connect"):
        shim.call_daemon(str(tmp_path / "none.sock"), {}, b"{}")


def test_launcher_needs_an_absolute_interpreter(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        launcher.install(str(tmp_path), "python3")
    path = launcher.install(str(tmp_path), "/usr/bin/python3")
    text = Path(path).read_text()
    assert text.startswith("#!/usr/bin/python3 -IS\n")
    assert "from multinet.shim import main" in text
    assert Path(path).stat().st_mode & 0o777 == 0o755
