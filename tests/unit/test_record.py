"""multinet.record: the records behave as the dataclasses and NamedTuples they replace."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import multinet
from multinet.record import FrozenInstanceError, field, fields, record, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from multinet.record import NamedTuple  # as the modules on thin mode's path import it


@record(frozen=True)
class Frozen:
    name: str
    items: list[int] = field(default_factory=list)
    size: int = 0
    seen: int = field(default=0, compare=False)


@record(frozen=True)
class Point:
    x: int
    y: int = field(default=0, compare=False)


@record()
class Mutable:
    name: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AsDataclass:
    name: str
    items: list[int] = dataclasses.field(default_factory=list)
    size: int = 0
    seen: int = dataclasses.field(default=0, compare=False)


def test_init_defaults_and_repr_as_a_dataclass() -> None:
    a = Frozen("a", size=2)
    assert (a.name, a.items, a.size, a.seen) == ("a", [], 2, 0)
    assert repr(a) == repr(AsDataclass("a", size=2)).replace("AsDataclass", "Frozen")
    assert Frozen("b").items is not Frozen("b").items  # a fresh default each time
    assert fields(Frozen) == ("name", "items", "size", "seen") == fields(a)
    assert vars(Frozen("c", [1])) == {"name": "c", "items": [1], "size": 0, "seen": 0}


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((), {}, "missing required argument 'name'"),
        (("a", [], 1, 2, 3), {}, "takes 4 positional arguments"),
        (("a",), {"name": "b"}, "multiple values for 'name'"),
        (("a",), {"other": 1}, "unexpected keyword 'other'"),
    ],
)
def test_bad_arguments_are_type_errors(
    args: tuple[object, ...], kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(TypeError, match=problem):
        Frozen(*args, **kwargs)  # type: ignore[arg-type,misc]


def test_equality_and_hash() -> None:
    assert Frozen("a", [1]) == Frozen("a", [1])
    assert Frozen("a", [1]) != Frozen("a", [2])
    assert Frozen("a", seen=1) == Frozen("a", seen=2)  # compare=False
    assert Frozen("a") != AsDataclass("a")  # another class: never equal
    assert hash(Point(1, 2)) == hash(Point(1, 3)) == hash((1,))  # compared fields only
    assert {Point(1): "one"}[Point(1)] == "one"
    assert Mutable("a") == Mutable("a")
    with pytest.raises(TypeError, match="unhashable"):
        hash(Mutable("a"))


def test_frozen_refuses_assignment_mutable_takes_it() -> None:
    a = Frozen("a")
    with pytest.raises(FrozenInstanceError):
        a.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):  # as dataclasses.FrozenInstanceError
        del a.name  # type: ignore[misc]
    m = Mutable("a")
    m.name = "b"
    assert m.name == "b"


def test_replace() -> None:
    a = Frozen("a", [1], 2)
    b = replace(a, size=3)
    assert (b, a) == (Frozen("a", [1], 3), Frozen("a", [1], 2))
    with pytest.raises(TypeError, match="no field 'other'"):
        replace(a, other=1)


class Pair(NamedTuple):
    left: int
    right: str = "r"

    def both(self) -> str:
        return f"{self.left}{self.right}"


def test_named_tuple_as_typings() -> None:
    p = Pair(1)
    assert p == (1, "r") and p.both() == "1r" and Pair._fields == ("left", "right")
    assert p._replace(right="x") == Pair(1, "x") and p._asdict() == {"left": 1, "right": "r"}
    assert repr(p) == "Pair(left=1, right='r')" and Pair.__module__ == __name__


def test_importing_it_imports_no_dataclasses_nor_typing() -> None:
    root = str(Path(multinet.__file__).resolve().parent.parent)
    code = (
        f"import sys; sys.path.insert(0, {root!r}); import multinet.record\n"
        "print(sorted({'dataclasses', 'typing', 'inspect'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
