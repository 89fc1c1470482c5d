"""The plugin and IPAM schemas: valid draft 2020-12, documented, and a table of good and
bad configs for every plugin, with the path and the message a person reads."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from multinet import schemas
from multinet.authoring import configcheck
from multinet.authoring.configcheck import ERROR, WARNING
from tests.unit.schemas.cases import BAD, GOOD

NAMES = [f"plugin-{t}.json" for t in configcheck.plugin_types()] + [
    f"ipam-{t}.json" for t in configcheck.ipam_types()
]


@pytest.mark.parametrize("name", [*NAMES, "plugin-common.json", "conflist.json"])
def test_schema_is_valid_and_every_key_is_described(name: str) -> None:
    schema = schemas.load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert all(p.get("description") for p in schema["properties"].values()), name


def test_every_issue_plugin_has_a_schema() -> None:
    wanted = {"bridge", "macvlan", "ipvlan", "host-device", "vlan", "ptp", "tuning"}
    wanted |= {"portmap", "bandwidth", "sbr", "multinet-sriov", "sriov"}
    assert wanted <= set(configcheck.plugin_types())
    assert {"host-local", "static", "dhcp", "whereabouts"} <= set(configcheck.ipam_types())


def test_every_plugin_type_has_good_and_bad_cases() -> None:
    def types(config: dict[str, Any]) -> set[str]:
        return {p["type"] for p in config.get("plugins", [config]) if "type" in p}

    good = set().union(*(types(c) for _, c in GOOD))
    bad = set().union(*(types(c) for _, c, _, _ in BAD))
    assert set(configcheck.plugin_types()) <= good
    assert set(configcheck.plugin_types()) - {"host-device"} <= bad | {"host-device"}


@pytest.mark.parametrize(("case", "config"), GOOD, ids=[c for c, _ in GOOD])
def test_good_configs_have_no_error_and_no_warning(case: str, config: dict[str, Any]) -> None:
    assert [p.render() for p in configcheck.check_config(config, "nad-name")] == []


@pytest.mark.parametrize(("case", "config", "path", "message"), BAD, ids=[c for c, *_ in BAD])
def test_bad_configs_say_where_and_what(
    case: str, config: dict[str, Any], path: str, message: str
) -> None:
    errors = [p for p in configcheck.check_config(config, "nad-name") if p.severity == ERROR]
    assert any(p.path == path and message in p.message for p in errors), [
        p.render() for p in errors
    ]


def test_unknown_types_and_case_spellings_are_warnings() -> None:
    found = configcheck.check_config(
        {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "calico", "x": 1},
                                                         {"type": "bridge", "isgateway": True}]}
    )  # fmt: skip
    assert {p.severity for p in found} == {WARNING}
    assert [p.path for p in found] == ["plugins[0].type", "plugins[1].isgateway"]
    assert "only the structure is checked" in found[0].message
    # Go's encoding/json reads it as isGateway: not a typo the plugin ignores.
    assert found[1].message == (
        'bridge reads it as "isGateway" (Go matches keys case-insensitively): write "isGateway"'
    )


@pytest.mark.parametrize(
    ("config", "line"),
    [
        ({"type": "macvlan", "mastr": "eth1"},
         'mastr: unknown key for macvlan (did you mean "master"?): the plugin would ignore it'),
        ({"type": "bridge",
          "ipam": {"type": "host-local", "subnet": "10.1.0.0/24", "gatway": "10.1.0.1"}},
         'ipam.gatway: unknown key for host-local IPAM (did you mean "gateway"?): the plugin '
         "would ignore it"),
        ({"type": "vlan", "master": "eth0", "vlanId": 5, "ipam": {"type": "dhcp"}, "zzz": 1},
         "zzz: unknown key for vlan: the plugin would ignore it (its keys: multinetctl nad "
         "explain vlan)"),
        # multinet's own plugin reads keys exactly: a case slip is an error there
        ({"type": "multinet-sriov", "deviceid": "0000:03:02.1"},
         'deviceid: unknown key for multinet-sriov (did you mean "deviceID"?): the plugin would '
         "ignore it"),
    ],
)  # fmt: skip
def test_an_unknown_key_of_a_known_plugin_is_an_error_with_a_suggestion(
    config: dict[str, Any], line: str
) -> None:
    found = configcheck.check_config({"cniVersion": "1.0.0", "name": "n", **config})
    assert [(p.severity, p.render()) for p in found] == [(ERROR, line)]
    relaxed = configcheck.check_config(
        {"cniVersion": "1.0.0", "name": "n", **config}, None, WARNING
    )
    assert [(p.severity, p.render()) for p in relaxed] == [(WARNING, line)]


@pytest.mark.parametrize(
    "plugin",
    [
        {"type": "bridge", "dns": {"nameservers": ["10.0.0.10"]}, "args": {"cni": {}},
         "capabilities": {"mac": True}, "runtimeConfig": {}, "prevResult": {}, "deviceID": "x",
         "pciBusID": "x", "ipMasqBackend": "nftables"},
        {"type": "macvlan", "master": "eth0", "bcqueuelen": 1000, "ipam": {"type": "whereabouts",
         "range": "10.1.0.0/24", "datastore": "kubernetes", "node_slice_size": "/28"}},
    ],
)  # fmt: skip
def test_keys_any_plugin_may_carry_are_not_flagged(plugin: dict[str, Any]) -> None:
    assert configcheck.check_config({"cniVersion": "1.0.0", "name": "n", **plugin}) == []


def test_the_issue_example_message() -> None:
    config = '{"cniVersion": "1.0.0", "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]]}}]}'  # noqa: E501
    (problem,) = configcheck.parse_and_check(config, "n")
    assert problem.render("spec.config") == (
        "spec.config.plugins[0].ipam.ranges[0][0].rangeStart: 10.2.0.5 is outside subnet "
        "10.1.0.0/24"
    )


def test_json_syntax_errors_give_line_and_column() -> None:
    (problem,) = configcheck.parse_and_check('{"type": "bridge",\n}', "n")
    assert problem.message.startswith("not valid JSON:")
    assert "line 2 column 1" in problem.message
