"""Multus's own shim talking to multinetd: Multus's /cni API on <socketDir>/multus.sock.

The client here speaks Multus's request shape (pkg/server/api: `env` and `config` as a
Go []byte, i.e. base64) and reads the answer as Multus's shim does: 200 with
`{"Result": <CNI 1.0.0>}` for ADD, an empty 200 for CHECK and DEL, anything else a
failure whose body is the error text.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from multinet.shim import client as shim
from tests.integration.daemon.sandbox import Sandbox
from tests.support.multus import multus_request


def multus_socket(sandbox: Sandbox) -> str:
    return str(sandbox.run / "multus" / "multus.sock")


def post(sandbox: Sandbox, path: str, body: bytes) -> tuple[int, bytes]:
    return shim.request(multus_socket(sandbox), "POST", path, body, timeout=120)


def multus_cni(
    sandbox: Sandbox, command: str, cid: str, netns: str, conf: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    stdin = json.dumps(conf if conf is not None else sandbox.netconf()).encode()
    return post(sandbox, "/cni", multus_request(sandbox.env(command, cid, netns), stdin))


def test_add_check_del_of_a_bridge_network_through_multus_api(sandbox: Sandbox) -> None:
    d = sandbox.daemon(socketDir=str(sandbox.run / "multus"))
    assert oct(os.stat(multus_socket(sandbox)).st_mode & 0o777) == "0o600"
    ns = sandbox.netns()
    conf = sandbox.netconf(cniVersion="0.4.0")  # the Result is 1.0.0 whatever the runtime's

    status, body = multus_cni(sandbox, "ADD", "m1", ns, conf)
    assert status == 200, body
    answer = json.loads(body)
    assert list(answer) == ["Result"]
    assert answer["Result"]["cniVersion"] == "1.0.0"
    gw = str(sandbox.subnet.network_address + 1)
    assert answer["Result"]["ips"][0]["gateway"] == gw
    assert sandbox.links(ns) == ["eth0"]

    assert multus_cni(sandbox, "CHECK", "m1", ns, conf) == (200, b"")
    assert multus_cni(sandbox, "DEL", "m1", ns, conf) == (200, b"")
    sandbox.assert_clean(ns)
    # The same requests as /v1/cni: counted and logged the same way.
    _, metrics = d.get("/metrics")
    assert 'multinet_requests_total{command="ADD",result="success"} 1' in metrics
    assert "container=m1" in d.log()


def test_a_cni_error_reaches_multus_shim_as_its_error_text(sandbox: Sandbox) -> None:
    sandbox.daemon(socketDir=str(sandbox.run / "multus"))
    ns = sandbox.netns()
    status, body = multus_cni(sandbox, "CHECK", "never-added", ns)
    assert status == 400
    text = body.decode()
    assert "has no networks attached" in text and "(CNI error code 3)" in text
    status, body = multus_cni(sandbox, "ADD", "m2", ns, {"cniVersion": "9.9.9", "name": "x"})
    assert status == 400 and "(CNI error code 1)" in body.decode()


def test_malformed_bodies_are_400_and_the_daemon_carries_on(sandbox: Sandbox) -> None:
    d = sandbox.daemon(socketDir=str(sandbox.run / "multus"))
    bad = [
        b"{not json",
        b"[1]",
        json.dumps({"env": {"CNI_COMMAND": 1}}).encode(),
        json.dumps({"env": {}, "config": ""}).encode(),  # no CNI_COMMAND
        json.dumps({"env": {"CNI_COMMAND": "ADD"}, "config": "not base64!"}).encode(),
        json.dumps({"env": {"CNI_COMMAND": "ADD"}, "config": 5}).encode(),
    ]
    for body in bad:
        status, text = post(sandbox, "/cni", body)
        assert status == 400, (body, text)
        assert text.decode().strip()
    _, metrics = d.get("/metrics")
    assert f'multinet_rejected_requests_total{{reason="malformed"}} {len(bad)}' in metrics
    # Health, readiness and the routes not served.
    sock = multus_socket(sandbox)
    assert shim.request(sock, "GET", "/healthz", timeout=10)[0] == 200
    assert post(sandbox, "/healthz", b"")[0] == 200
    assert shim.request(sock, "GET", "/readyz", timeout=10)[0] in (200, 503)
    status, text = post(sandbox, "/delegate", b"{}")  # served (test_dynamic_networks.py)
    assert status == 400 and b"CNI_COMMAND" in text
    assert post(sandbox, "/v1/cni", b"{}")[0] == 404
    assert d.get("/healthz")[0] == 200  # multinet's own socket is unaffected


def test_the_multus_socket_is_removed_on_shutdown_and_is_opt_in(sandbox: Sandbox) -> None:
    d = sandbox.daemon(socketDir=str(sandbox.run / "multus"))
    assert os.path.exists(multus_socket(sandbox))
    assert d.stop() == 0
    assert not os.path.exists(multus_socket(sandbox))
    sandbox.daemon()  # without socketDir: no Multus socket
    assert not os.path.exists(multus_socket(sandbox))


@pytest.mark.parametrize("path", ["/cni", "/delegate"])
def test_a_body_over_the_limit_on_multus_socket_is_answered_413_not_reset(
    sandbox: Sandbox, path: str
) -> None:
    """As on multinet's own socket: the client reads the 413 though its write broke (the
    /delegate property found a reset connection here)."""
    sandbox.daemon(socketDir=str(sandbox.run / "multus"))
    body = b'{"env": {}, "config": "' + b"x" * (17 << 20) + b'"}'
    status, answer = post(sandbox, path, body)
    assert status == 413 and b"larger than" in answer
    assert shim.request(multus_socket(sandbox), "GET", "/healthz", timeout=5)[0] == 200
