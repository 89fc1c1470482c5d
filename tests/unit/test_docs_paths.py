"""Every relative link and every repository path that README.md and docs/ name exists.

A rename that leaves a dead link or a stale path in a user's first hour fails here: links
(`[text](target#anchor)`, the anchor checked against the target's headings as GitHub
makes them) and paths in backticks whose first part is a folder of the repository
(`deploy/...`, `tests/...`) or of the package (`engine/journal.py` is
`multinet/engine/journal.py`). Host paths (`/etc/cni/net.d`), globs and placeholders
(`deploy/overlays/*`, `<uid>`) are not repository paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "multinet"
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
NOT_A_PATH = re.compile(r"[\s*?<>{}$|=,;\[\]()]")
# A file's location inside a code span: `file.py:12`, `tests/x.py::test_name`.
LOCATION = re.compile(r"(::[\w\[\]-]+|:\d+(-\d+)?)$")


def _folders(root: Path) -> frozenset[str]:
    return frozenset(p.name for p in root.iterdir() if p.is_dir() and p.name != "__pycache__")


TOP = _folders(ROOT) - {".git", ".venv"}
SUBPACKAGES = _folders(PACKAGE)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces
    to hyphens (`## 5. What happens` -> `5-what-happens`)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", doc.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def dead_links(doc: Path) -> list[str]:
    dead = []
    prose = CODE_SPAN.sub("", FENCE.sub("", doc.read_text()))
    for target in LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists():
            dead.append(f"{target}: {file_part} does not exist")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            dead.append(f"{target}: no heading #{anchor} in {_relative(linked)}")
    return dead


def repository_path(span: str) -> str | None:
    """The repository path a code span names, or None when it names none."""
    text = LOCATION.sub("", span.strip()).rstrip("/")
    if text.startswith(("/", "./")) or "/" not in text or NOT_A_PATH.search(text):
        return None
    first = text.split("/", 1)[0]
    if first in TOP:
        return text
    if first in SUBPACKAGES:
        return f"multinet/{text}"
    return None


def stale_paths(doc: Path) -> list[str]:
    text = FENCE.sub("", doc.read_text())
    stale = []
    for span in CODE_SPAN.findall(text):
        path = repository_path(span)
        if path is not None and not (ROOT / path).exists():
            stale.append(f"`{span}`: {path} does not exist")
    return stale


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_relative_link_resolves(doc: Path) -> None:
    assert dead_links(doc) == []


@pytest.mark.parametrize("doc", DOCS, ids=_relative)
def test_every_repository_path_named_exists(doc: Path) -> None:
    assert stale_paths(doc) == []


def test_the_checks_find_what_a_rename_leaves(tmp_path: Path) -> None:
    """The checks above can fail: a dead link, a missing anchor and a stale path."""
    doc = tmp_path / "probe.md"
    (tmp_path / "thick-mode.md").write_text("# Thick mode\n")
    doc.write_text(
        "# Title\n\n## 5. What happens to running pods\n\n"
        "[ok](#5-what-happens-to-running-pods) [gone](#what-happens-to-running-pods)\n"
        "[file](thick-mode.md) [nofile](multinet-daemonset.md)\n"
        "`deploy/multinet-daemonset.yaml` `engine/journal.py` `engine/nothing.py`\n"
        "`/etc/cni/net.d` `deploy/overlays/*` `k8s.cni.cncf.io/v1`\n"
        "`tests/unit/test_docs_paths.py:12`\n"
    )
    assert dead_links(doc) == [
        "#what-happens-to-running-pods: no heading #what-happens-to-running-pods in probe.md",
        "multinet-daemonset.md: multinet-daemonset.md does not exist",
    ]
    assert stale_paths(doc) == [
        "`deploy/multinet-daemonset.yaml`: deploy/multinet-daemonset.yaml does not exist",
        "`engine/nothing.py`: multinet/engine/nothing.py does not exist",
    ]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("5. What happens to running pods", "5-what-happens-to-running-pods"),
        ("Multus daemon-config.json keys", "multus-daemon-configjson-keys"),
        ("The CNI config directory (`/etc/cni/net.d`)", "the-cni-config-directory-etccninetd"),
        ("DHCP", "dhcp"),
    ],
)
def test_slug_is_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor
