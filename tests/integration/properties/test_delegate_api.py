"""Surface 7: Multus's `POST /delegate` (the dynamic-networks controller's requests).

A real multinetd with Multus's socket and one sandbox it attached (static delegates of
the test plugin `mndtest`, which does no kernel work). Mutated requests shaped as the
upstream controller sends them: the envelope, the CNI environment, the delegate's
netconf (base64 inside) and `interfaceAttributes`. The promises: every request gets 200
or 400 (never 5xx, never a dropped connection), a 400's text is the CNI error with a
code of the table (never 999, never a traceback in the daemon's log), the daemon stays
healthy, and the sandbox's journal holds what was attached and nothing a failed ADD
left: after each example, what a successful ADD attached is DELed again and the journal
is the sandbox's alone.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st

from multinet.shim import client as shim
from tests.integration.daemon.sandbox import DaemonProc, Sandbox
from tests.integration.properties import strategies as s
from tests.integration.properties.harness import CNI_CODES, TRACEBACK, prop

NETNS = "/var/run/netns/mnd-unused"  # the daemon runs the sandbox's netns, from its journal

CID = "sandbox1"
CONFIG: dict[str, Any] = {"cniVersion": "1.0.0", "name": "hot", "type": "mndtest"}
ATTRIBUTES: dict[str, Any] = {
    "ips": ["10.9.0.5/24"],
    "mac": "02:00:00:00:00:05",
    "cni-args": {"a": "b"},
}
# Commands and plugin types that stay off the kernel: the test plugin, or none found.
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "GC", "", "BOGUS")
TYPES = ("mndtest", "mnd-nosuch", "")


def template(netns: str) -> dict[str, Any]:
    return {
        "env": {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": CID,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "hot1",
            "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=p1",
            "CNI_PATH": "/usr/lib/cni",
        },
        "config": CONFIG,
        "interfaceAttributes": ATTRIBUTES,
    }


def finish(doc: Any) -> Any:
    """The config goes on the wire as Go's []byte: base64 of its JSON (when it is still a
    JSON value; a mutation may have made it anything)."""
    if isinstance(doc, dict) and "config" in doc and not isinstance(doc["config"], str):
        try:
            doc["config"] = base64.b64encode(json.dumps(doc["config"]).encode()).decode()
        except (TypeError, ValueError):
            pass
    return doc


def bodies() -> st.SearchStrategy[bytes]:
    shape = template(NETNS)
    docs = s.documents(
        s.mutations(
            shape,
            # The plugin type only among those that do no kernel work.
            protected=frozenset({"type"}),
            extra_keys=("env", "config", "interfaceAttributes", "ips", "mac", "cni-args"),
            special=[
                (("env", "CNI_COMMAND"), st.sampled_from(COMMANDS)),
                (("config", "type"), st.sampled_from(TYPES)),
                (("env", "CNI_CONTAINERID"), st.sampled_from([CID, "other", ""])),
            ],
            file_names=frozenset(),
        )
    )
    return st.one_of(docs.map(lambda d: d.render(shape, finish)), s.garbage())


@dataclass
class DelegateRig:
    box: Sandbox
    daemon: DaemonProc

    @property
    def socket(self) -> str:
        return str(self.box.run / "multus" / "multus.sock")

    def journal(self) -> list[tuple[str, str]]:
        (path,) = (self.box.state / "journal").glob("*.json")
        return [(e["ifname"], e["state"]) for e in json.loads(path.read_text())["entries"]]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DelegateRig]:
    box = Sandbox(tmp_path_factory.mktemp("delegate"))
    try:
        d = box.daemon(generateConfig=False, socketDir=str(box.run / "multus"))
        netns = box.netns()
        conf = box.netconf(
            delegates=[{"cniVersion": "1.0.0", "name": "cluster", "type": "mndtest"}]
        )
        out = box.shim("ADD", CID, netns, conf)
        assert out.returncode == 0, out.stdout + out.stderr
        yield DelegateRig(box, d)
    finally:
        box.close()


ERROR_CODE = re.compile(r"\(CNI error code (\d+)\)\s*$")
PINNED = [
    b"{}",
    b'{"env": {"CNI_COMMAND": "ADD"}}',
    json.dumps(finish(template(NETNS))).encode(),
    json.dumps({**template(NETNS), "config": "e30="}).encode(),
    json.dumps({**finish(template(NETNS)), "interfaceAttributes": {"mac": "a;IP=1"}}).encode(),
]


@pytest.mark.root
@prop(ci=80, body=(bodies(), PINNED))
def test_every_delegate_request_gets_an_answer_and_leaves_the_sandbox_whole(
    rig: DelegateRig, body: bytes
) -> None:
    h = rig
    before = h.journal()
    try:
        status, answer = shim.request(h.socket, "POST", "/delegate", body, timeout=60)
    except shim.DaemonUnavailable as e:
        raise AssertionError(f"no HTTP answer: {e}") from None
    text = answer.decode("utf-8", "replace")
    assert status in (200, 400), f"{status} {text[:300]}"
    if status == 400:
        code = ERROR_CODE.search(text)
        if code is not None:  # a CNI error (else a malformed envelope, told as such)
            assert int(code.group(1)) in CNI_CODES and code.group(1) != "999", text
    assert TRACEBACK not in h.daemon.log(), h.daemon.log()[-2000:]
    assert shim.request(h.socket, "GET", "/healthz", timeout=10)[0] == 200
    after = h.journal()
    added = [entry for entry in after if entry not in before]
    assert all(state == "added" for _, state in added), after  # nothing half-done
    for ifname, _ in added:  # DEL what an ADD attached, through /delegate too
        env = {**template(NETNS)["env"], "CNI_COMMAND": "DEL", "CNI_IFNAME": ifname}
        request = {"env": env, "config": base64.b64encode(json.dumps(CONFIG).encode()).decode()}
        status, answer = shim.request(
            h.socket, "POST", "/delegate", json.dumps(request).encode(), timeout=60
        )
        assert status == 200, answer
    assert h.journal()[: len(before)] == before
    assert len(h.journal()) == 1, h.journal()  # the sandbox's cluster network alone
