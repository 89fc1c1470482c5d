"""Multus's thick-plugin wire format: requests decoded, answers as Multus's shim reads them."""

from __future__ import annotations

import base64
import json

import pytest

from multinet.daemon import multus_api


def test_decode_multus_request() -> None:
    body = json.dumps(
        {
            "env": {"CNI_COMMAND": "ADD", "CNI_ARGS": "K8S_POD_NAME=p"},
            "config": base64.b64encode(b'{"name": "n"}').decode(),
            "interfaceAttributes": {"mac": "02:00:00:00:00:01"},
        }
    ).encode()
    env, stdin = multus_api.decode_request(body)
    assert env == {"CNI_COMMAND": "ADD", "CNI_ARGS": "K8S_POD_NAME=p"}
    assert stdin == b'{"name": "n"}'
    assert multus_api.decode_request(b'{"env": {"CNI_COMMAND": "DEL"}}')[1] == b""


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"env": []}', "object of strings"),
        (b'{"env": {"A=B": "x", "CNI_COMMAND": "ADD"}}', "not an environment variable"),
        (b'{"env": {}}', "missing CNI_COMMAND"),
        (b'{"env": {"CNI_COMMAND": "ADD"}, "config": "%%"}', "not base64"),
        (b'{"env": {"CNI_COMMAND": "ADD"}, "config": [1]}', "base64 string"),
    ],
)
def test_malformed_requests(body: bytes, message: str) -> None:
    with pytest.raises(multus_api.MalformedRequest, match=message):
        multus_api.decode_request(body)


def test_answers() -> None:
    add = json.dumps({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]})
    status, body = multus_api.answer("ADD", 0, add)
    assert status == 200
    assert json.loads(body) == {
        "Result": {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}], "dns": {}}
    }
    assert multus_api.answer("DEL", 0, "") == (200, b"")
    assert multus_api.answer("CHECK", 0, "") == (200, b"")
    error = json.dumps({"cniVersion": "1.0.0", "code": 7, "msg": "bad", "details": "why"})
    assert multus_api.answer("ADD", 1, error) == (400, b"bad: why (CNI error code 7)\n")
    assert multus_api.answer("ADD", 2, "") == (400, b"failed with exit status 2\n")
    assert multus_api.answer("ADD", 0, "[1]")[0] == 400  # not a result: said so


def test_decode_delegate_request_reads_interface_attributes() -> None:
    body = json.dumps(
        {
            "env": {"CNI_COMMAND": "ADD"},
            "config": base64.b64encode(b"{}").decode(),
            "interfaceAttributes": {"ips": ["10.1.0.5/24"], "cni-args": {"a": "b"}},
        }
    ).encode()
    _, _, attributes = multus_api.decode_delegate_request(body)
    assert attributes == {"ips": ["10.1.0.5/24"], "mac": "", "cni-args": {"a": "b"}}
    assert multus_api.decode_delegate_request(b'{"env": {"CNI_COMMAND": "DEL"}}')[2] == {}


@pytest.mark.parametrize(
    "attributes, message",
    [
        ([], "must be an object"),
        ({"ips": "10.1.0.5/24"}, "list of addresses"),
        ({"ips": [5]}, "list of addresses"),
        ({"mac": 5}, "mac' must be a string"),
        ({"cni-args": []}, "cni-args' must be an object"),
    ],
)
def test_malformed_interface_attributes(attributes: object, message: str) -> None:
    body = json.dumps({"env": {"CNI_COMMAND": "ADD"}, "interfaceAttributes": attributes})
    with pytest.raises(multus_api.MalformedRequest, match=message):
        multus_api.decode_delegate_request(body.encode())
    multus_api.decode_request(body.encode())  # /cni ignores them, as Multus
