"""Every package's docstring names its modules and subpackages, one line each, so a reader
finds the room from `__init__.py`, and a module added, renamed or removed is noticed.

The format, in the package's `__init__.py` docstring, one line per module (a subpackage
with a trailing slash), the name at the start of the line and two or more spaces before
its description:

    journal       the crash-safe record of what was attached, and its store
    proto/        the kubelet's PodResources messages (generated)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import multinet

ROOT = Path(multinet.__file__).parent
# A line naming a module: `name` or `name/`, then at least two spaces, then its description.
ENTRY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*/?) {2,}\S")


def packages() -> list[Path]:
    return sorted(p.parent for p in ROOT.rglob("__init__.py") if "__pycache__" not in p.parts)


def contents(package: Path) -> set[str]:
    """The package's modules (`name`) and subpackages (`name/`)."""
    modules = {p.stem for p in package.glob("*.py") if p.name != "__init__.py"}
    subpackages = {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()}
    return modules | subpackages


def named(package: Path) -> list[str]:
    """The modules the package's docstring names, in its order."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    return [m.group(1) for m in map(ENTRY.match, doc.splitlines()) if m]


def problems(package: Path, root: Path = ROOT.parent) -> list[str]:
    """What the package's docstring misses, names that is not there, or names twice."""
    init = package.relative_to(root) / "__init__.py"
    name = ".".join(package.relative_to(root).parts)
    have, listed = contents(package), named(package)
    return [
        *(
            f"{init}: its docstring does not name `{m}`: add a line `{m}  <what it is>`"
            for m in sorted(have - set(listed))
        ),
        *(
            f"{init}: its docstring names `{m}`, which {name} does not have"
            for m in sorted(set(listed) - have)
        ),
        *(
            f"{init}: its docstring names `{m}` twice"
            for m in sorted({m for m in listed if listed.count(m) > 1})
        ),
    ]


@pytest.mark.parametrize(
    "package", packages(), ids=lambda p: ".".join(p.relative_to(ROOT.parent).parts)
)
def test_the_docstring_names_each_module_of_the_package(package: Path) -> None:
    assert problems(package) == [], "\n".join(problems(package))


def test_every_folder_of_python_modules_is_a_package() -> None:
    # A folder without __init__.py would escape the test above.
    folders = {p.parent for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(f) for f in folders - set(packages())) == []


def test_a_module_missing_from_the_docstring_or_gone_from_the_package_is_named(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "sub" / "__init__.py").write_text("")
    for module in ("kept", "added", "twice"):
        (package / f"{module}.py").write_text("")
    (package / "__init__.py").write_text(
        '"""A package.\n\nkept     it stays\nsub/     a subpackage\ngone     removed since\n'
        'twice    one\ntwice    two\nprose, not a module line\n"""\n'
    )
    assert problems(package, tmp_path) == [
        "pkg/__init__.py: its docstring does not name `added`: add a line `added  <what it is>`",
        "pkg/__init__.py: its docstring names `gone`, which pkg does not have",
        "pkg/__init__.py: its docstring names `twice` twice",
    ]
