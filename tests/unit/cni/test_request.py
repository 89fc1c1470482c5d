"""CNI requests: environment and stdin parsed into a Request, every rejection with its code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from multinet.cni.errors import (
    DECODE_FAILURE,
    INVALID_CONFIG,
    INVALID_ENVIRONMENT,
    DecodeFailure,
    InvalidConfig,
    InvalidEnvironment,
)
from multinet.cni.request import Request, check_args, from_env, parse_args, parse_config
from multinet.cni.version import SUPPORTED

COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION")

# What the spec requires per command (CNI_COMMAND aside), written out here on purpose
# rather than read from the module under test.
REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": (),
    "STATUS": (),
    "VERSION": (),
}

FULL_ENV = {
    "CNI_CONTAINERID": "f81d4fae7dec11d0a76500a0c91e6bf6",
    "CNI_NETNS": "/var/run/netns/cni-1234",
    "CNI_IFNAME": "eth0",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
    "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
}


def stdin(version: str, **extra: Any) -> bytes:
    return json.dumps({"cniVersion": version, "name": "net", "type": "multinet", **extra}).encode()


def env_for(command: str, **override: str) -> dict[str, str]:
    return {"CNI_COMMAND": command, **FULL_ENV, **override}


def minimal_env(command: str) -> dict[str, str]:
    return {"CNI_COMMAND": command, **{k: FULL_ENV[k] for k in REQUIRED[command]}}


# -- a full request -----------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("command", COMMANDS)
def test_full_request_is_parsed(command: str, version: str) -> None:
    data = stdin(version, delegates=[{"type": "bridge"}])
    req = from_env(env_for(command), data)
    assert req == Request(
        command=command,
        config={
            "cniVersion": version,
            "name": "net",
            "type": "multinet",
            "delegates": [{"type": "bridge"}],
        },
        cni_version=version,
        container_id="f81d4fae7dec11d0a76500a0c91e6bf6",
        netns="/var/run/netns/cni-1234",
        ifname="eth0",
        args_raw="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
        args=(
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", "default"),
            ("K8S_POD_NAME", "web-0"),
        ),
        path=("/opt/cni/bin", "/usr/lib/cni"),
        env=env_for(command),
    )


@pytest.mark.parametrize("version", SUPPORTED)
@pytest.mark.parametrize("command", COMMANDS)
def test_minimal_environment_is_enough(command: str, version: str) -> None:
    req = from_env(minimal_env(command), stdin(version))
    assert req.command == command
    assert req.cni_version == version
    assert req.args == ()
    assert req.args_raw == ""
    assert req.path == ()
    assert req.container_id == ("" if not REQUIRED[command] else FULL_ENV["CNI_CONTAINERID"])


@pytest.mark.parametrize(("command", "key"), [(c, k) for c, keys in REQUIRED.items() for k in keys])
@pytest.mark.parametrize("value", [None, ""])
def test_missing_required_env_is_code_4(command: str, key: str, value: str | None) -> None:
    env = minimal_env(command)
    if value is None:
        del env[key]
    else:
        env[key] = value
    with pytest.raises(InvalidEnvironment) as e:
        from_env(env, stdin("1.1.0"))
    assert e.value.code == INVALID_ENVIRONMENT == 4
    assert e.value.msg == f"{key} is required for {command} but is not set"


@pytest.mark.parametrize("version", SUPPORTED)
def test_del_accepts_an_empty_netns(version: str) -> None:
    req = from_env(env_for("DEL", CNI_NETNS=""), stdin(version))
    assert req.netns == ""
    req = from_env(minimal_env("DEL"), stdin(version))
    assert req.netns == ""


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (None, "CNI_COMMAND is not set"),
        ("", "CNI_COMMAND is not set"),
        ("add", "CNI_COMMAND 'add' is not one of ADD, DEL, CHECK, GC, STATUS, VERSION"),
        ("DELETE", "CNI_COMMAND 'DELETE' is not one of ADD, DEL, CHECK, GC, STATUS, VERSION"),
        (" ADD", "CNI_COMMAND ' ADD' is not one of ADD, DEL, CHECK, GC, STATUS, VERSION"),
    ],
)
def test_bad_command_is_code_4(command: str | None, message: str) -> None:
    env = dict(FULL_ENV)
    if command is not None:
        env["CNI_COMMAND"] = command
    with pytest.raises(InvalidEnvironment) as e:
        # The command is checked before stdin: garbage stdin does not mask it.
        from_env(env, b"not json")
    assert e.value.code == 4
    assert e.value.msg == message


def test_request_keeps_its_own_copy_of_the_environment() -> None:
    env = env_for("ADD")
    req = from_env(env, stdin("1.0.0"))
    env["CNI_IFNAME"] = "changed"
    assert req.env["CNI_IFNAME"] == "eth0"


# -- CNI_CONTAINERID ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "container_id",
    [
        "a",
        "0",
        "f81d4fae7dec11d0a76500a0c91e6bf6",
        "cnitool-77383ca0a0715733ca6f",
        "Abc_def.1-2",
        "a..b",
        "x" * 256,
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_valid_container_ids(command: str, container_id: str) -> None:
    req = from_env(env_for(command, CNI_CONTAINERID=container_id), stdin("1.0.0"))
    assert req.container_id == container_id


@pytest.mark.parametrize(
    "container_id",
    [
        "-abc",
        "_abc",
        ".abc",
        "abc/def",
        "../etc",
        "abc def",
        "ab:c",
        "abc;x",
        "abc@eth0",
        "abc\n",
        "abc\nxyz",
        "\nabc",
        "ünïcode",
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "GC"])
def test_invalid_container_ids_are_code_4(command: str, container_id: str) -> None:
    with pytest.raises(InvalidEnvironment) as e:
        from_env(env_for(command, CNI_CONTAINERID=container_id), stdin("1.1.0"))
    assert e.value.code == 4
    assert e.value.msg == (
        f"CNI_CONTAINERID {container_id!r} is invalid: expected [a-zA-Z0-9][a-zA-Z0-9_.-]*"
    )


# -- CNI_IFNAME ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ifname", ["eth0", "net1", "a", "x" * 15, "veth-1.2_x", "é" * 7, "...", "a.b"]
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_valid_ifnames(command: str, ifname: str) -> None:
    assert from_env(env_for(command, CNI_IFNAME=ifname), stdin("1.0.0")).ifname == ifname


@pytest.mark.parametrize(
    ("ifname", "problem"),
    [
        ("x" * 16, "longer than 15 bytes"),
        ("é" * 8, "longer than 15 bytes"),  # 8 characters, 16 bytes
        (".", '"." and ".." are not allowed'),
        ("..", '"." and ".." are not allowed'),
        ("a/b", 'contains "/"'),
        ("/", 'contains "/"'),
        ("eth0:1", 'contains ":"'),
        ("a b", "contains whitespace"),
        ("a\tb", "contains whitespace"),
        ("eth0\n", "contains whitespace"),
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "VERSION", "GC"])
def test_invalid_ifnames_are_code_4(command: str, ifname: str, problem: str) -> None:
    # An ifname that is given is checked even where the command does not need one.
    with pytest.raises(InvalidEnvironment) as e:
        from_env(env_for(command, CNI_IFNAME=ifname), stdin("1.1.0"))
    assert e.value.code == 4
    assert e.value.msg == f"CNI_IFNAME {ifname!r} is invalid: {problem}"


@pytest.mark.parametrize("command", ["GC", "STATUS", "VERSION"])
def test_ifname_is_optional_where_not_required(command: str) -> None:
    assert from_env(env_for(command, CNI_IFNAME=""), stdin("1.1.0")).ifname == ""


# -- CNI_ARGS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        ("", ()),
        ("IgnoreUnknown=1", (("IgnoreUnknown", "1"),)),
        (
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;"
            "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=8a3b",
            (
                ("IgnoreUnknown", "1"),
                ("K8S_POD_NAMESPACE", "ns1"),
                ("K8S_POD_NAME", "web-0"),
                ("K8S_POD_INFRA_CONTAINER_ID", "abc"),
                ("K8S_POD_UID", "8a3b"),
            ),
        ),
        ("K=", (("K", ""),)),
        ("K=;L=2", (("K", ""), ("L", "2"))),
        ("K=V=W", (("K", "V=W"),)),
        ("A=1;A=2", (("A", "1"), ("A", "2"))),
    ],
)
def test_parse_args(raw: str, pairs: tuple[tuple[str, str], ...]) -> None:
    assert parse_args(raw) == pairs
    req = from_env(env_for("ADD", CNI_ARGS=raw), stdin("1.0.0"))
    assert req.args == pairs
    assert req.args_raw == raw


@pytest.mark.parametrize(
    ("raw", "item"),
    [
        ("foo", "1 'foo'"),
        ("=v", "1 '=v'"),
        ("a=1;bad", "2 'bad'"),
        ("IgnoreUnknown", "1 'IgnoreUnknown'"),
    ],
)
def test_malformed_args_are_code_4(raw: str, item: str) -> None:
    with pytest.raises(InvalidEnvironment) as e:
        parse_args(raw)
    assert e.value.code == 4
    assert e.value.msg == f"CNI_ARGS: invalid element {item}: expected KEY=VALUE"
    with pytest.raises(InvalidEnvironment):
        from_env(env_for("ADD", CNI_ARGS=raw), stdin("1.0.0"))


def test_arg_returns_the_last_value_or_none() -> None:
    req = from_env(env_for("ADD", CNI_ARGS="A=1;B=;A=2"), stdin("1.0.0"))
    assert req.arg("A") == "2"
    assert req.arg("B") == ""
    assert req.arg("C") is None


# -- CNI_PATH -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (None, ()),
        ("", ()),
        ("/opt/cni/bin", ("/opt/cni/bin",)),
        ("/opt/cni/bin:/usr/lib/cni", ("/opt/cni/bin", "/usr/lib/cni")),
        ("::/a::/b:", ("/a", "/b")),
        ("/b:/a:/b", ("/b", "/a", "/b")),
    ],
)
def test_cni_path_is_split_on_colons(raw: str | None, path: tuple[str, ...]) -> None:
    env = env_for("ADD")
    del env["CNI_PATH"]
    if raw is not None:
        env["CNI_PATH"] = raw
    assert from_env(env, stdin("1.0.0")).path == path


# -- stdin ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "details"),
    [
        (b"not json", "Expecting value: line 1 column 1 (char 0)"),
        (b'{"cniVersion": "1.0.0"', "Expecting ',' delimiter: line 1 column 23 (char 22)"),
        (b"\xff\xfe\x00garbage", None),
        (b"{'single': 'quotes'}", None),
    ],
)
def test_undecodable_stdin_is_code_6(data: bytes, details: str | None) -> None:
    with pytest.raises(DecodeFailure) as e:
        from_env(env_for("ADD"), data)
    assert e.value.code == DECODE_FAILURE == 6
    assert e.value.msg == "network configuration on stdin is not valid JSON"
    if details is not None:
        assert e.value.details == details
    assert e.value.details


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"[]", "list"), (b"null", "NoneType"), (b'"x"', "str"), (b"3", "int"), (b"true", "bool")],
)
def test_non_object_stdin_is_code_6(data: bytes, kind: str) -> None:
    with pytest.raises(DecodeFailure) as e:
        parse_config(data)
    assert e.value.code == 6
    assert e.value.msg == "network configuration on stdin must be a JSON object"
    assert e.value.details == f"got {kind}"


def test_empty_stdin_is_an_empty_config_at_version_0_1_0() -> None:
    req = from_env({"CNI_COMMAND": "VERSION"}, b"")
    assert req.config == {}
    assert req.cni_version == "0.1.0"
    assert from_env({"CNI_COMMAND": "VERSION"}, b"{}").cni_version == "0.1.0"


@pytest.mark.parametrize("bad", [1, 1.0, None, ["1.0.0"], {"v": "1.0.0"}, True])
def test_non_string_cni_version_is_code_7(bad: object) -> None:
    with pytest.raises(InvalidConfig) as e:
        from_env(env_for("ADD"), json.dumps({"cniVersion": bad}).encode())
    assert e.value.code == INVALID_CONFIG == 7
    assert e.value.msg == f"cniVersion must be a string, got {json.dumps(bad)}"


def test_utf8_stdin_is_decoded() -> None:
    req = from_env(env_for("ADD"), stdin("1.0.0", note="naïve ✓"))
    assert req.config["note"] == "naïve ✓"


# -- CNI_ARGS keys (libcni's LoadArgs rule, as Multus applies it) ---------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u;K8S_POD_INFRA_CONTAINER_ID=c",
        "IgnoreUnknown=1;FOO=bar",
        "IgnoreUnknown=true;FOO=bar",
        "IgnoreUnknown=TRUE;FOO=bar",
    ],
)
@pytest.mark.parametrize("command", ["ADD", "CHECK"])
def test_known_or_ignored_args_pass(command: str, raw: str) -> None:
    check_args(from_env(env_for(command, CNI_ARGS=raw), stdin("1.0.0")))


@pytest.mark.parametrize("raw", ["FOO=bar", "IgnoreUnknown=0;FOO=bar;K8S_POD_NAME=p;BAR=1"])
@pytest.mark.parametrize("command", ["ADD", "CHECK"])
def test_unknown_args_without_ignore_unknown_are_code_4(command: str, raw: str) -> None:
    req = from_env(env_for(command, CNI_ARGS=raw), stdin("1.0.0"))
    with pytest.raises(InvalidEnvironment) as e:
        check_args(req)
    assert e.value.code == 4
    unknown = [k.split("=")[0] for k in raw.split(";") if k.split("=")[0] in ("FOO", "BAR")]
    assert e.value.msg == f"CNI_ARGS: unknown key(s) {', '.join(unknown)}"
    assert "IgnoreUnknown=1" in e.value.details


def test_del_never_fails_on_unknown_args() -> None:
    check_args(from_env(env_for("DEL", CNI_ARGS="FOO=bar"), stdin("1.0.0")))


# -- CNI_ARGS with empty elements (libcni: `ARGS: invalid pair ""`) -----------------------


@pytest.mark.parametrize(
    ("raw", "position"),
    [(";", 1), (";;", 1), ("A=1;", 2), (";A=1", 1), ("A=1;;B=2", 2)],
)
def test_cni_args_with_an_empty_element_is_an_invalid_environment(raw: str, position: int) -> None:
    with pytest.raises(InvalidEnvironment) as e:
        from_env(env_for("ADD", CNI_ARGS=raw), stdin("1.0.0"))
    assert e.value.code == 4
    assert e.value.msg.startswith(f"CNI_ARGS: element {position} is empty")


def test_del_drops_empty_cni_args_elements_and_passes_the_rest_on() -> None:
    req = from_env(env_for("DEL", CNI_ARGS="IgnoreUnknown=1;;K8S_POD_NAME=p;"), stdin("1.0.0"))
    assert req.args == (("IgnoreUnknown", "1"), ("K8S_POD_NAME", "p"))
    assert req.args_raw == "IgnoreUnknown=1;K8S_POD_NAME=p"  # what the delegates get


# -- deeply nested and non-standard JSON on stdin ------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"[" * 100000, "nested deeper than 64 levels"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "nested deeper than 64 levels"),
        (b"\xef\xbb\xbf" + stdin("1.0.0"), "byte order mark"),
        ('{"cniVersion": "1.0.0"}'.encode("utf-16"), "not UTF-8"),
        ('{"cniVersion": "1.0.0"}'.encode("utf-16-le"), "UTF-8"),
        ('{"cniVersion": "1.0.0"}'.encode("utf-32"), "not UTF-8"),
        (b'{"cniVersion": "1.0.0", "name": "caf\xe9"}', "not UTF-8: byte 0xe9"),
        (stdin("1.0.0")[:-1] + b', "mtu": NaN}', "NaN is not JSON"),
        (stdin("1.0.0")[:-1] + b', "mtu": Infinity}', "Infinity is not JSON"),
        (stdin("1.0.0")[:-1] + b', "mtu": [-Infinity]}', "-Infinity is not JSON"),
    ],
)
def test_non_standard_or_deeply_nested_stdin_is_a_decode_failure(data: bytes, problem: str) -> None:
    with pytest.raises(DecodeFailure) as e:
        from_env(env_for("ADD"), data)
    assert e.value.code == 6
    assert problem in e.value.details


def test_config_nested_64_levels_is_accepted() -> None:
    nested: Any = {}
    for _ in range(62):
        nested = {"k": nested}
    config = parse_config(stdin("1.0.0", deep=nested))
    assert config["cniVersion"] == "1.0.0"


# -- environment that is not UTF-8 text ----------------------------------------------------


@pytest.mark.parametrize(
    "key", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"]
)
@pytest.mark.parametrize("bad", ["\udcff", "\ud800", "\x00"])
def test_cni_variable_that_is_not_utf8_text_is_an_invalid_environment(key: str, bad: str) -> None:
    value = {"CNI_ARGS": "K8S_POD_NAME=a" + bad, "CNI_PATH": "/opt/cni/bin:/x" + bad}.get(
        key, "eth" + bad
    )
    with pytest.raises(InvalidEnvironment) as e:
        from_env(env_for("ADD", **{key: value}), stdin("1.0.0"))
    assert e.value.code == 4
    assert e.value.msg.startswith(key)
