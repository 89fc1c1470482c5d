"""Multus's thick-plugin API, so that Multus's own `multus-shim` can talk to multinetd.

During a migration a node may still have Multus's shim in /opt/cni/bin and Multus's
generated config in /etc/cni/net.d: with `socketDir` in its configuration, multinetd
answers that shim on `<socketDir>/multus.sock`, running each request exactly as a
`/v1/cni` request (the same dispatcher, the same engine).

Multus's wire format (multus-cni pkg/server/api, pkg/server/server.go):

  POST /cni  {"env": {CNI_* ...}, "config": "<stdin, base64: a Go []byte>",
              "interfaceAttributes": {...}}      (the last only for /delegate)
    success: 200, for ADD `{"Result": <the result in CNI 1.0.0>}` (the shim converts it
             to its config's cniVersion), for DEL and CHECK an empty body;
    failure: 400, the error as plain text (the shim reports
             "CNI request failed with status 400: '<text>'" as its CNI error).
  GET|POST /healthz  200
  POST /delegate     a dynamic-networks controller's change (daemon.delegate): the
                     request as /cni's, the config being the delegate's netconf and
                     `interfaceAttributes` {"ips": [...], "mac": "...", "cni-args": {...}}
                     the element's; the same answers.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from multinet.cni import result
from multinet.cni.errors import CNIError

CNI_ROUTE = "/cni"
DELEGATE_ROUTE = "/delegate"
RESULT_VERSION = "1.0.0"  # Multus's daemon answers in CNI 1.0.0 (cni100.NewResultFromResult)


class MalformedRequest(Exception):
    pass


def decode_delegate_request(body: bytes) -> tuple[dict[str, str], bytes, dict[str, Any]]:
    """(env, stdin, interfaceAttributes) of a /delegate request."""
    env, stdin, data = _decode(body)
    return env, stdin, _attributes(data.get("interfaceAttributes"))


def decode_request(body: bytes) -> tuple[dict[str, str], bytes]:
    """(env, stdin) of Multus's api.Request; MalformedRequest when the body is not one.
    /cni ignores interfaceAttributes, as Multus does."""
    env, stdin, _ = _decode(body)
    return env, stdin


def _decode(body: bytes) -> tuple[dict[str, str], bytes, dict[str, Any]]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise MalformedRequest(f"body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise MalformedRequest("body must be a JSON object {env, config}")
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise MalformedRequest("'env' must be an object of strings")
    for k, v in env.items():
        if not k or "=" in k or "\x00" in k + v:
            raise MalformedRequest(f"'env' {json.dumps(k)} is not an environment variable")
    if "CNI_COMMAND" not in env:
        raise MalformedRequest("unexpected or missing CNI_COMMAND")
    config = data.get("config", "")
    if config is None:
        config = ""
    if not isinstance(config, str):
        raise MalformedRequest("'config' must be a base64 string (the CNI configuration)")
    try:
        stdin = base64.b64decode(config, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedRequest(f"'config' is not base64: {e}") from None
    return env, stdin, data


def _attributes(raw: Any) -> dict[str, Any]:
    """interfaceAttributes (Multus's DelegateInterfaceAttributes), checked."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MalformedRequest("'interfaceAttributes' must be an object {ips, mac, cni-args}")
    ips, mac, args = raw.get("ips"), raw.get("mac"), raw.get("cni-args")
    if ips is not None and not (
        isinstance(ips, list) and all(isinstance(ip, str) and ip for ip in ips)
    ):
        raise MalformedRequest("'interfaceAttributes.ips' must be a list of addresses (CIDR)")
    if mac is not None and not isinstance(mac, str):
        raise MalformedRequest("'interfaceAttributes.mac' must be a string")
    if args is not None and not isinstance(args, dict):
        raise MalformedRequest("'interfaceAttributes.cni-args' must be an object")
    return {"ips": ips or [], "mac": mac or "", "cni-args": args or {}}


def error_text(stdout: str, code: int) -> str:
    """The plain-text error Multus's daemon sends: the CNI error's message and details."""
    try:
        error = json.loads(stdout)
    except ValueError:
        error = None
    if not isinstance(error, dict):
        return stdout.strip() or f"failed with exit status {code}"
    msg = str(error.get("msg", "")) or "error"
    details = error.get("details")
    text = f"{msg}: {details}" if details else msg
    return f"{text} (CNI error code {error.get('code', code)})"


def answer(command: str, code: int, stdout: str) -> tuple[int, bytes]:
    """(HTTP status, body) of a request that ran with this exit code and stdout."""
    if code != 0:
        return 400, (error_text(stdout, code) + "\n").encode()
    if command != "ADD" or not stdout.strip():
        return 200, b""
    try:
        raw: Any = json.loads(stdout)
        converted = result.convert(raw, RESULT_VERSION)
    except (ValueError, CNIError) as e:  # what multinet printed must convert; if not, say so
        return 400, f"cannot convert the result to CNI {RESULT_VERSION}: {e}\n".encode()
    return 200, json.dumps({"Result": converted}).encode()
