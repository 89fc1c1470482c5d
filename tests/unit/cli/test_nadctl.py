"""multinetctl nad validate|create|explain and annotation validate."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from multinet.cli import multinetctl
from multinet.cni.errors import InvalidConfig
from multinet.networks.selection import parse_networks

GOOD = """\
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: macvlan-conf, namespace: ns1}
spec:
  config: '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": {"type": "static"}}'
"""
BAD = """\
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: bad}
spec:
  config: |
    {"cniVersion": "1.0.0", "plugins": [{"type": "bridge", "ipam": {"type": "host-local",
     "ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]]}}]}
"""


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "multinet.cli.multinetctl", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_validate_good_and_bad_documents(tmp_path: Path) -> None:
    f = tmp_path / "nads.yaml"
    f.write_text(GOOD + "---\n" + BAD)
    rc, _, err = run("nad", "validate", str(f))
    assert rc == 1
    assert err.strip() == (
        f"{f}#2 (default/bad): error: spec.config.plugins[0].ipam.ranges[0][0].rangeStart: "
        "10.2.0.5 is outside subnet 10.1.0.0/24"
    )
    assert run("nad", "validate", str(f), "-")[0] == 1


def test_validate_stdin_and_json_output() -> None:
    assert run("nad", "validate", "-", stdin=GOOD)[:2] == (0, "valid (1 file)\n")
    rc, out, _ = run("nad", "validate", "-o", "json", "-", stdin=BAD)
    assert rc == 1
    report = json.loads(out)
    assert report["valid"] is False
    assert report["problems"][0]["path"] == "spec.config.plugins[0].ipam.ranges[0][0].rangeStart"
    assert report["problems"][0]["document"] == "<stdin>#1 (default/bad)"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("a: [", "not valid YAML"),
        ("kind: Pod\n", "'Pod' is not a NetworkAttachmentDefinition"),
        (GOOD.replace("macvlan-conf", "Bad_Name"), "metadata.name: 'Bad_Name' is not a DNS-1123"),
        (GOOD.replace('"master": "eth0",', '"master": "eth0",,'), "spec.config: not valid JSON"),
        ("apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n"
         "metadata: {name: x}\nspec: {config: {a: 1}}\n", "must be a string holding JSON"),
    ],
)  # fmt: skip
def test_validate_reports_document_problems(text: str, part: str) -> None:
    rc, _, err = run("nad", "validate", "-", stdin=text)
    assert rc == 1 and part in err, err


def test_create_prints_a_valid_nad_for_every_common_plugin() -> None:
    from multinet.authoring import nad

    for plugin in nad.TEMPLATES:
        obj, problems = nad.create(plugin, "net-1", "ns", ["ipam.type=static"])
        assert problems == [], (plugin, problems)
        again = yaml.safe_load(nad.to_yaml(obj))
        assert json.loads(again["spec"]["config"]) == json.loads(obj["spec"]["config"])
        assert nad.check_nad(again) == []


def test_create_with_set_and_refusal() -> None:
    rc, out, _ = run("nad", "create", "macvlan", "m1", "-n", "ns", "--set", "master=ens3",
                     "--set", "mtu=1400")  # fmt: skip
    assert rc == 0
    obj = yaml.safe_load(out)
    config = json.loads(obj["spec"]["config"])
    assert (config["master"], config["mtu"], obj["metadata"]["namespace"]) == ("ens3", 1400, "ns")
    rc, _, err = run("nad", "create", "bridge", "b", "--set", "mtu=20")
    assert rc == 1 and "spec.config.mtu: 20 is less than the minimum 68" in err


def test_explain_lists_keys_with_type_and_default() -> None:
    rc, out, _ = run("nad", "explain", "macvlan")
    assert rc == 0
    assert (
        '  mode ("bridge" | "private" | "vepa" | "passthru"): macvlan mode [default: "bridge"]'
        in out
    )
    rc, out, _ = run("nad", "explain", "host-local", "ranges")
    assert rc == 0 and "subnet (string, cidr)" in out and "[required]" in out
    rc, _, err = run("nad", "explain", "nosuch")
    assert rc == 1 and "no schema for 'nosuch'" in err


ANNOTATIONS = ["ns/a@net1,b@", '[{"name": "x", "mac": "zz"}]', "a,,b", '{"name": "x"}', "Bad"]


@pytest.mark.parametrize("value", ANNOTATIONS)
def test_annotation_messages_are_the_ones_add_gives(value: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        parse_networks(value, "default")
    rc, _, err = run("annotation", "validate", value)
    assert rc == 1
    assert err.strip() == f"error: {raised.value.msg}"


def test_annotation_with_nads_dir_and_pod(tmp_path: Path) -> None:
    (tmp_path / "nads.yaml").write_text(GOOD + "---\n" + BAD)
    rc, out, _ = run("annotation", "validate", "ns1/macvlan-conf@net1", "--nads", str(tmp_path))
    assert (rc, out) == (0, "ns1/macvlan-conf@net1\n")
    rc, _, err = run("annotation", "validate", "macvlan-conf,bad", "--nads", str(tmp_path))
    assert rc == 1
    assert "NetworkAttachmentDefinition default/macvlan-conf not found" in err
    assert "NetworkAttachmentDefinition default/bad: spec.config.plugins[0]" in err
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns1",
           "annotations": {"k8s.v1.cni.cncf.io/networks": "macvlan-conf"}}}  # fmt: skip
    rc, out, _ = run("annotation", "validate", "--pod", "-", "--nads", str(tmp_path),
                     "-o", "json", stdin=json.dumps(pod))  # fmt: skip
    assert rc == 0 and json.loads(out)["networks"][0]["namespace"] == "ns1"


def test_main_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(GOOD))
    with pytest.raises(SystemExit) as done:
        multinetctl.main(["nad", "validate", "-"])
    assert done.value.code == 0
    assert capsys.readouterr().out == "valid (1 file)\n"
