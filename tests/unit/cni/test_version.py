"""CNI versions: parsing, ordering, the per-command gates and conflist negotiation."""

from __future__ import annotations

from typing import Any

import pytest

from multinet.cni import version
from multinet.cni.errors import IncompatibleVersion, InvalidConfig
from multinet.cni.version import SUPPORTED

# The first spec version defining each operation, written out independently of the module.
FIRST = {
    "ADD": (0, 1, 0),
    "DEL": (0, 1, 0),
    "VERSION": (0, 1, 0),
    "CHECK": (0, 4, 0),
    "GC": (1, 1, 0),
    "STATUS": (1, 1, 0),
}


def test_supported_versions() -> None:
    assert SUPPORTED == ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
    assert version.LATEST == "1.1.0"
    assert [version.parse(v) for v in SUPPORTED] == sorted(version.parse(v) for v in SUPPORTED)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("0.3.0", (0, 3, 0)),
        ("0.3.1", (0, 3, 1)),
        ("1.1.0", (1, 1, 0)),
        ("10.20.30", (10, 20, 30)),
        ("01.0.0", (1, 0, 0)),
    ],
)
def test_parse(text: str, parsed: tuple[int, int, int]) -> None:
    assert version.parse(text) == parsed


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "v1.0.0",
        "1.a.0",
        "1..0",
        " 1.0.0",
        "1.0.0 ",
        "1.0.0\n",
        "-1.0.0",
        "+1.0.0",
        "1.0.0-rc1",
        "1.0.\u00b9",  # superscript one: str.isdigit() says yes, int() says no
        "\u0661.\u0660.\u0660",  # Arabic-Indic digits
        "\uff11.0.0",  # fullwidth one
    ],
)
def test_parse_rejects_malformed_versions_with_code_7(bad: str) -> None:
    with pytest.raises(InvalidConfig) as e:
        version.parse(bad)
    assert e.value.code == 7
    assert e.value.msg == f"invalid cniVersion {bad!r}: expected MAJOR.MINOR.PATCH"


@pytest.mark.parametrize("bad", [None, 1, 1.0, ["1", "0", "0"], (1, 0, 0)])
def test_parse_rejects_non_strings(bad: Any) -> None:
    with pytest.raises(InvalidConfig) as e:
        version.parse(bad)
    assert e.value.code == 7
    assert e.value.msg.startswith("invalid cniVersion ")


@pytest.mark.parametrize(
    ("v", "minimum", "expected"),
    [
        ("0.4.0", "0.4.0", True),
        ("0.3.1", "0.4.0", False),
        ("1.0.0", "0.4.0", True),
        ("0.10.0", "0.4.0", True),  # numeric, not lexical
        ("0.9.0", "0.10.0", False),
        ("1.0.0", "1.1.0", False),
        ("2.0.0", "1.1.0", True),
    ],
)
def test_at_least(v: str, minimum: str, expected: bool) -> None:
    assert version.at_least(v, minimum) is expected


@pytest.mark.parametrize("v", SUPPORTED)
def test_require_supported_accepts_every_supported_version(v: str) -> None:
    assert version.require_supported(v) == v


@pytest.mark.parametrize("v", ["0.1.0", "0.2.0"])
def test_require_supported_accepts_the_legacy_versions_multus_accepts(v: str) -> None:
    assert version.require_supported(v) == v


@pytest.mark.parametrize("v", ["0.0.1", "0.3.2", "1.0.1", "1.2.0", "2.0.0"])
def test_require_supported_rejects_others_with_code_1(v: str) -> None:
    with pytest.raises(IncompatibleVersion) as e:
        version.require_supported(v)
    assert e.value.code == 1
    assert e.value.msg == f"incompatible CNI version {v!r}"
    assert e.value.details == "multinet supports 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"


def test_require_supported_rejects_junk_as_invalid_config() -> None:
    with pytest.raises(InvalidConfig) as e:
        version.require_supported("one")
    assert not isinstance(e.value, IncompatibleVersion)
    assert e.value.code == 7


@pytest.mark.parametrize("v", SUPPORTED)
@pytest.mark.parametrize("command", sorted(FIRST))
def test_require_for(command: str, v: str) -> None:
    allowed = version.parse(v) >= FIRST[command]
    if allowed:
        version.require_for(command, v)
        return
    with pytest.raises(IncompatibleVersion) as e:
        version.require_for(command, v)
    minimum = ".".join(map(str, FIRST[command]))
    assert e.value.code == 1
    assert e.value.msg == f"{command} is not defined for cniVersion {v}"
    assert e.value.details == f"{command} needs cniVersion >= {minimum}"


def test_gates_at_the_boundaries() -> None:
    with pytest.raises(IncompatibleVersion):
        version.require_for("CHECK", "0.3.1")
    version.require_for("CHECK", "0.4.0")
    with pytest.raises(IncompatibleVersion):
        version.require_for("GC", "1.0.0")
    with pytest.raises(IncompatibleVersion):
        version.require_for("STATUS", "1.0.0")
    version.require_for("GC", "1.1.0")
    version.require_for("STATUS", "1.1.0")


def test_require_for_rejects_a_malformed_version() -> None:
    with pytest.raises(InvalidConfig):
        version.require_for("ADD", "1.0")


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        (["0.3.1", "1.0.0"], "1.0.0"),
        (["1.0.0", "0.4.0", "1.1.0", "0.3.0"], "1.1.0"),
        (["1.2.0", "1.0.0"], "1.0.0"),  # newer than we speak: ignored
        (["2.0.0", "0.4.0", "9.9.9"], "0.4.0"),
        (["0.2.0", "0.3.0"], "0.3.0"),
        (["junk", "1.0.0", "", "1.0", "v1.1.0"], "1.0.0"),
        ([], None),
        (["9.9.9"], None),
        (["0.1.0", "0.2.0"], "0.2.0"),
        (["junk"], None),
    ],
)
def test_negotiate_picks_the_highest_supported(candidates: list[str], expected: str | None) -> None:
    assert version.negotiate(candidates) == expected
    assert version.negotiate(reversed(candidates)) == expected
    assert version.negotiate(iter(candidates)) == expected


def test_negotiate_ignores_non_strings() -> None:
    candidates: list[Any] = [1, None, ["1.1.0"], {"v": 1}, "0.4.0", 1.1]
    assert version.negotiate(candidates) == "0.4.0"


@pytest.mark.parametrize("v", SUPPORTED)
def test_negotiate_single_version(v: str) -> None:
    assert version.negotiate([v]) == v


def test_negotiate_compares_numerically_with_a_custom_supported_set() -> None:
    assert version.negotiate(["0.9.0", "0.10.0"], supported=["0.9.0", "0.10.0"]) == "0.10.0"
    assert version.negotiate(["0.9.0", "0.10.0"], supported=["0.9.0"]) == "0.9.0"
    assert version.negotiate(["1.1.0"], supported=()) is None
