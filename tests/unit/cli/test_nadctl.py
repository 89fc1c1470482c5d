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


def test_validate_names_a_misspelt_spec_config() -> None:
    text = GOOD.replace("  config:", "  confg:")
    rc, out, err = run("nad", "validate", "-", stdin=text)
    assert rc == 1 and out == ""
    assert err == (
        '<stdin>#1 (ns1/macvlan-conf): error: spec.confg: unknown key (did you mean "config"?): '
        "a NAD's spec has only config (the API server drops any other key)\n"
    )


def test_validate_refuses_an_unknown_key_of_a_known_plugin() -> None:
    rc, _, err = run("nad", "validate", "-", stdin=GOOD.replace('"master"', '"mastr"'))
    assert rc == 1
    assert err == (
        "<stdin>#1 (ns1/macvlan-conf): error: spec.config.mastr: unknown key for macvlan (did "
        'you mean "master"?): the plugin would ignore it\n'
    )
    calico = GOOD.replace('"type": "macvlan"', '"type": "calico"')  # no schema: a warning
    rc, out, _ = run("nad", "validate", "-", stdin=calico)
    assert rc == 0 and "warning: spec.config.type: no schema for plugin type 'calico'" in out


def test_validate_a_directory_and_broken_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yml").write_text("a: b\n  c: [\n")
    (tmp_path / "c.txt").write_text("not read")
    (tmp_path / "empty").mkdir()
    rc, out, err = run("nad", "validate", str(tmp_path))
    assert rc == 1 and out == ""
    assert err == (
        f"{tmp_path}/b.yml: error: not valid YAML at line 2 column 4: mapping values are not "
        "allowed here\n"
    )
    (tmp_path / "b.yml").unlink()
    assert run("nad", "validate", str(tmp_path)) == (0, "valid (1 file)\n", "")
    rc, _, err = run("nad", "validate", str(tmp_path / "empty"))
    assert (rc, err) == (1, f"{tmp_path}/empty: error: no YAML file (.yaml, .yml, .json) in it\n")


def test_broken_yaml_in_a_file_names_the_file_and_the_line(tmp_path: Path) -> None:
    f = tmp_path / "nads.yaml"
    f.write_text(GOOD + "---\nkind: [\n")
    rc, _, err = run("nad", "validate", str(f))
    assert rc == 1 and "<unicode string>" not in err
    assert err.startswith(f"{f}: error: not valid YAML at line 8 column 1: ")


def test_create_prints_a_valid_nad_for_every_common_plugin() -> None:
    from multinet.authoring import nad

    for plugin in nad.TEMPLATES:
        created = nad.create(plugin, "net-1", "ns", ["ipam.type=static"])
        assert created.problems == [], (plugin, created.problems)
        obj = created.nad
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


def test_create_names_the_placeholders_to_replace() -> None:
    rc, out, err = run("nad", "create", "vlan", "v", "--set", "ipam.type=static",
                       "--set", "master=ens3")  # fmt: skip
    assert rc == 0 and yaml.safe_load(out)["kind"] == "NetworkAttachmentDefinition"
    assert err == (
        "multinetctl nad create: placeholder: spec.config.vlanId is 100: replace it with the "
        "VLAN ID (0-4094) (--set vlanId=...)\n"
        "multinetctl nad create: placeholder: spec.config.ipam.addresses[0].address is "
        '"10.10.0.10/24": replace it with the pod\'s address (CIDR) (--set ipam.addresses=...)\n'
    )
    rc, _, err = run(
        "nad", "create", "bridge", "b", "--set", 'ipam.ranges=[[{"subnet": "10.5.0.0/24"}]]'
    )
    assert (rc, err) == (0, "")  # the bridge name is a default, not a placeholder


def test_create_prints_the_warnings_it_knows_of() -> None:
    rc, out, err = run("nad", "create", "calico", "c", "--set", "x=1")
    assert rc == 0 and out.startswith("apiVersion: k8s.cni.cncf.io/v1\n")
    assert err.startswith(
        "multinetctl nad create: warning: spec.config.type: no schema for plugin type 'calico': "
        "only the structure is checked (known types: "
    )


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


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"name": "a", "interfce": "net5"}]',
         'networks annotation element 1 {"name": "a", "interfce": "net5"}: unknown key '
         '"interfce" (did you mean "interface"?): ADD ignores it'),
        ("a@net1,b@net1", "interface name 'net1' is requested by both 'default/a' and 'default/b'"),
        ("a@eth0", "interface name 'eth0' is requested by both 'the cluster network' and "
         "'default/a'"),
        ("a@net2,b", "interface name 'net2' is requested by both 'default/a' and 'default/b'"),
        ('[{"name": "a", "default-route": ["10.1.0.1"]}, {"name": "b", "default-route": '
         '["10.2.0.1"]}]', "default-route: IPv4 gateway 10.2.0.1 of network default/b conflicts "
         "with 10.1.0.1 of default/a: only one IPv4 default route is possible"),
    ],
)  # fmt: skip
def test_annotation_validate_refuses_what_add_refuses_or_ignores(value: str, message: str) -> None:
    rc, out, err = run("annotation", "validate", value)
    assert (rc, out, err) == (1, "", f"error: {message}\n")


def test_an_unknown_key_is_told_with_the_conflict_it_causes() -> None:
    value = '[{"name": "a", "interface": "net2"}, {"name": "b", "interfce": "net3"}]'
    rc, _, err = run("annotation", "validate", value)
    assert (rc, err.splitlines()) == (
        1,
        [
            'error: networks annotation element 2 {"name": "b", "interfce": "net3"}: unknown key '
            '"interfce" (did you mean "interface"?): ADD ignores it',
            "error: interface name 'net2' is requested by both 'default/a' and 'default/b'",
        ],
    )


def test_annotation_validate_uses_the_add_rules() -> None:
    """The same function: the plan ADD builds refuses the very duplicate."""
    from multinet.networks import attachments

    sels = parse_networks("a@net2,b", "default")
    with pytest.raises(InvalidConfig) as raised:
        attachments.interfaces(("cluster", "eth0"), [], [(f"default/{s.name}", s) for s in sels])
    assert raised.value.msg == (
        "interface name 'net2' is requested by both 'default/a' and 'default/b'"
    )


def test_both_validators_answer_in_one_json_shape(tmp_path: Path) -> None:
    (tmp_path / "nads.yaml").write_text(GOOD + "---\n" + BAD)
    value = '[{"name": "macvlan-conf", "x": 1}]'
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns1",
           "annotations": {"k8s.v1.cni.cncf.io/networks": value}}}  # fmt: skip
    rc, out, _ = run("annotation", "validate", "--pod", "-", "--nads", str(tmp_path), "-o",
                     "json", stdin=json.dumps(pod))  # fmt: skip
    assert rc == 1
    assert json.loads(out) == {
        "valid": False,
        "problems": [
            {
                "document": "<stdin> (ns1/p)",
                "path": "",
                "message": 'networks annotation element 1 {"name": "macvlan-conf", "x": 1}: '
                'unknown key "x": ADD ignores it',
                "severity": "error",
            }
        ],
        "networks": [{"namespace": "ns1", "name": "macvlan-conf", "interface": None}],
    }
    rc, out, _ = run("nad", "validate", "-o", "json", str(tmp_path))
    report = json.loads(out)
    assert set(report) == {"valid", "problems"}
    assert set(report["problems"][0]) == {"document", "path", "message", "severity"}


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


def test_a_default_network_naming_eth0_passes_as_at_add() -> None:
    """The default-network element replaces the cluster network on CNI_IFNAME: naming
    eth0 clashes with nothing (ADD accepts it)."""
    value = '[{"name": "alt-cluster-net", "namespace": "kube-system", "interface": "eth0"}]'
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns1",
           "annotations": {"v1.multus-cni.io/default-network": value}}}  # fmt: skip
    rc, _, err = run("annotation", "validate", "--pod", "-", stdin=json.dumps(pod))
    assert (rc, err) == (0, "")


def test_npwg_ipam_claim_reference_is_a_known_key() -> None:
    """NPWG's element field (KubeVirt persistent IPs): ADD ignores it as Multus does, and
    it is not reported as a typo."""
    rc, _, err = run("annotation", "validate", '[{"name": "a", "ipam-claim-reference": "c"}]')
    assert (rc, err) == (0, "")
    rc, _, err = run("annotation", "validate", '[{"name": "a", "ipam-claim-reference": 1}]')
    assert rc == 1 and "ipam-claim-reference must be a string, got number 1" in err


def test_the_dhcp_ipams_route_priority_is_a_known_key() -> None:
    """The reference dhcp IPAM reads `priority` (its routes' metric)."""
    nad = GOOD.replace('{"type": "static"}', '{"type": "dhcp", "priority": 100}')
    assert '"priority": 100' in nad
    rc, _, err = run("nad", "validate", "-", stdin=nad)
    assert (rc, err) == (0, ""), err
