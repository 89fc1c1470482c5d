"""The dispatcher (the error boundary of thin mode and the daemon): every outcome becomes
a result, nothing, or the spec's error JSON."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from multinet.cni import errors
from multinet.cni.request import Request
from multinet.cni.version import ACCEPTED, LATEST, SUPPORTED
from multinet.meta import dispatch
from multinet.thin.main import handle

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "ctr1",
    "CNI_NETNS": "/var/run/netns/ns1",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
}


def stdin(version: str) -> bytes:
    return json.dumps({"cniVersion": version, "name": "n", "type": "multinet"}).encode()


def run(handler: Any, version: str = "1.0.0", env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    rc = dispatch.run(env or ENV, stdin(version), out, handler)
    return rc, out.getvalue()


def one_json_line(text: str) -> Any:
    assert text.endswith("\n")
    assert text.count("\n") == 1
    return json.loads(text)


@pytest.mark.parametrize("version", SUPPORTED)
def test_version_reply(version: str) -> None:
    out = io.StringIO()
    rc = dispatch.run(
        {"CNI_COMMAND": "VERSION"}, json.dumps({"cniVersion": version}).encode(), out, handle
    )
    assert rc == 0
    assert one_json_line(out.getvalue()) == {
        "cniVersion": version,
        "supportedVersions": ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }


def test_version_reply_for_an_old_caller() -> None:
    out = io.StringIO()
    assert dispatch.run({"CNI_COMMAND": "VERSION"}, b"", out, handle) == 0
    assert json.loads(out.getvalue())["cniVersion"] == "0.1.0"


@pytest.mark.parametrize(("version", "answered"), [("9.9.9", LATEST), ("0.3.0", "0.3.0")])
def test_an_error_answers_in_a_version_multinet_speaks(version: str, answered: str) -> None:
    rc, out = run(handle, version)
    assert rc == 1
    if version == "9.9.9":
        assert one_json_line(out) == {
            "cniVersion": "1.1.0",
            "code": errors.INCOMPATIBLE_VERSION,
            "msg": "incompatible CNI version '9.9.9'",
            "details": f"multinet supports {', '.join(ACCEPTED)}",
        }
    assert one_json_line(out)["cniVersion"] == answered  # a supported one is echoed
    out_version = io.StringIO()
    dispatch.run({"CNI_COMMAND": "VERSION"}, stdin(version), out_version, handle)
    assert json.loads(out_version.getvalue())["cniVersion"] == answered


@pytest.mark.parametrize("version", SUPPORTED)
def test_success_prints_the_result(version: str) -> None:
    seen: list[Request] = []
    result = {"cniVersion": version, "interfaces": [{"name": "eth0"}], "ips": []}

    def handler(req: Request) -> dict[str, Any]:
        seen.append(req)
        return result

    rc, out = run(handler, version)
    assert rc == 0
    assert one_json_line(out) == result
    (req,) = seen
    assert (req.command, req.container_id, req.ifname, req.cni_version) == (
        "ADD",
        "ctr1",
        "eth0",
        version,
    )


@pytest.mark.parametrize("command", ["DEL", "CHECK"])
def test_success_without_a_result_prints_nothing(command: str) -> None:
    rc, out = run(lambda req: None, env={**ENV, "CNI_COMMAND": command})
    assert (rc, out) == (0, "")


ERRORS = [
    (errors.IncompatibleVersion("v"), 1),
    (errors.UnsupportedField("f"), 2),
    (errors.UnknownContainer("c"), 3),
    (errors.InvalidEnvironment("e"), 4),
    (errors.IOFailure("io"), 5),
    (errors.DecodeFailure("d"), 6),
    (errors.InvalidConfig("cfg"), 7),
    (errors.PluginNotFound("pnf"), 7),
    (errors.TryAgainLater("later"), 11),
    (errors.NotAvailable("na"), 50),
    (errors.Degraded("deg"), 51),
    (errors.DelegateError("del"), 100),
    (errors.DelegateError("del", code=11), 11),
    (errors.ClusterError("api"), 101),
]


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize(("error", "code"), ERRORS)
def test_cni_error_becomes_error_json(version: str, error: errors.CNIError, code: int) -> None:
    def handler(req: Request) -> None:
        raise error

    rc, out = run(handler, version)
    assert rc == 1
    assert one_json_line(out) == {"cniVersion": version, "code": code, "msg": error.msg}


def test_error_details_are_included() -> None:
    def handler(req: Request) -> None:
        raise errors.TryAgainLater("API server unreachable", "connection refused")

    rc, out = run(handler, "0.4.0")
    assert rc == 1
    assert one_json_line(out) == {
        "cniVersion": "0.4.0",
        "code": 11,
        "msg": "API server unreachable",
        "details": "connection refused",
    }


def test_request_errors_are_reported_without_calling_the_handler() -> None:
    def handler(req: Request) -> None:
        raise AssertionError("must not be called")

    env = {k: v for k, v in ENV.items() if k != "CNI_NETNS"}
    rc, out = run(handler, "1.0.0", env)
    assert rc == 1
    reply = one_json_line(out)
    assert reply["code"] == 4
    assert reply["msg"] == "CNI_NETNS is required for ADD but is not set"


def test_undecodable_stdin_reports_the_latest_version() -> None:
    out = io.StringIO()
    rc = dispatch.run(ENV, b"{oops", out, lambda req: None)
    assert rc == 1
    reply = one_json_line(out.getvalue())
    assert reply["cniVersion"] == LATEST
    assert reply["code"] == 6
    assert reply["msg"] == "network configuration on stdin is not valid JSON"


@pytest.mark.parametrize("version", SUPPORTED)
def test_unexpected_exception_is_code_999_without_a_traceback(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(req: Request) -> None:
        values: dict[str, int] = {}
        values["missing"] += 1  # a bug: KeyError

    with caplog.at_level(logging.ERROR, logger="multinet"):
        rc, out = run(handler, version)
    assert rc == 1
    assert "Traceback" not in out
    assert one_json_line(out) == {
        "cniVersion": version,
        "code": 999,
        "msg": "multinet internal error: KeyError: 'missing'",
        "details": "see the multinet log (logFile) for the traceback",
    }
    # The traceback goes to the log, not to the runtime.
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


def test_cni_error_is_logged_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def handler(req: Request) -> None:
        raise errors.InvalidConfig("bad key", "detail")

    with caplog.at_level(logging.ERROR, logger="multinet"):
        run(handler)
    assert [(r.getMessage(), r.exc_info) for r in caplog.records] == [("bad key: detail", None)]


def test_version_reply_helper() -> None:
    req = Request(command="VERSION", config={}, cni_version="0.3.1")
    assert dispatch.version_reply(req) == {
        "cniVersion": "0.3.1",
        "supportedVersions": list(ACCEPTED),
    }
