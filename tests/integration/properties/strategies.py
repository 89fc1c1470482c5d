"""Hypothesis strategies: mutations of valid inputs, and the values that break parsers.

A mutated document is a valid template (a netconf, an annotation, a NAD config, an API
object) with a few `Mutation`s applied at paths that exist in it, then encoded: as UTF-8
JSON, with a BOM, as UTF-16/32, with raw tokens JSON allows Python but not the spec
(NaN, Infinity, 1e400), or replaced by bytes that are no document at all. Templates are
built by the test at run time (their paths name the test's own directories), so the
strategies draw paths from a *shape*: the same template built with placeholder values.

Mutations never aim a plugin at the host: keys that name host objects (`bridge`,
`dataDir`, ...) only take values that no plugin can act on, and no string value may
name a reference plugin other than the template's (`vrf`, `firewall` would run). Such a
key is never deleted, never set to null (Go's decoder leaves a field that is null unset:
the plugin takes its default, host-local's /var/lib/cni/networks, the bridge plugin's
cni0), nor reached under another spelling (Go matches JSON keys case-insensitively, so
an added "DataDir" or "datadir" sets dataDir).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

REFERENCE_PLUGINS = frozenset(p.name for p in Path("/usr/lib/cni").glob("*"))
DEEP = 100_000  # nesting depth of the "[[[[..." documents


class Raw:
    """A token written into the JSON text as is: `NaN`, `1e400`, `[[[[`..."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        short = self.text if len(self.text) <= 40 else f"{self.text[:20]}...({len(self.text)})"
        return f"Raw({short!r})"


class Big:
    """A long string, shown short in falsifying examples."""

    def __init__(self, unit: str, count: int) -> None:
        self.unit, self.count = unit, count

    @property
    def value(self) -> str:
        return self.unit * self.count

    def __repr__(self) -> str:
        return f"Big({self.unit!r}*{self.count})"


Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Mutation:
    """`op` at `path`: "set" (replace or add the key), "delete", or "suffix" (append
    `value`, a string without "..", to the string there: keeps a directory inside the
    test's own)."""

    op: str
    path: Path_
    value: Any = None


# -- values that break parsers ---------------------------------------------------------

NUMBERS = (
    0,
    -1,
    1,
    2**63,
    -(2**63) - 1,
    10**400,
    0.0,
    -0.0,
    1e-300,
    3e6,
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    Raw("1e400"),
    Raw("-1e400"),
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1" * 5000),
)
STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udcff",
    "\ufeff",
    "NaN",
    "1e400",
    "3e6",
    "-1",
    "true",
    "null",
    "../..",
    "a/b",
    "/",
    ";",
    "a;",
    "=",
    "\n",
    "\u202e",
    "é",
    "😀",
    "eth0",
    "net1",
)


def nasty_strings() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(STRINGS),
        st.text(max_size=30),
        st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape")),
        st.builds(
            Big,
            st.sampled_from(["a", "é", "\x00", "[", "\ud800"]),
            st.sampled_from([300, 70_000, 1_000_000]),
        ),
    )


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(NUMBERS),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        nasty_strings(),
    )


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Random JSON-ish values (with Raw tokens and deep nesting among the leaves)."""
    leaves = st.one_of(
        scalars(),
        st.just(Raw("[" * DEEP)),
        st.just(Raw("[" * DEEP + "]" * DEEP)),
        st.just(Raw('{"a":' * 5000 + "1" + "}" * 5000)),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                nasty_strings().filter(lambda k: isinstance(k, str)), inner, max_size=4
            ),
        ),
        max_leaves=max_leaves,
    )


def safe(value: Any, allowed: frozenset[str] = frozenset()) -> bool:
    """No string in `value` names a reference plugin, but a plain string among `allowed`:
    inside a generated object or list none is, or a whole new plugin (an `ipam` of
    host-local without the test's dataDir, say) would run with its host defaults."""
    if isinstance(value, str):
        return value not in REFERENCE_PLUGINS or value in allowed
    if isinstance(value, list):
        return all(safe(v) for v in value)
    if isinstance(value, dict):
        return all(safe(k) and safe(v) for k, v in value.items())
    return True


# -- paths and mutations -----------------------------------------------------------------


def paths(doc: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path in `doc` (the root excluded)."""
    out: list[Path_] = []
    items: Sequence[tuple[Any, Any]] = ()
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    for key, value in items:
        out.append((*prefix, key))
        out.extend(paths(value, (*prefix, key)))
    return out


def containers(doc: Any) -> list[Path_]:
    """Paths of the objects in `doc` (the root included): where extra keys go."""
    return [()] + [p for p in paths(doc) if isinstance(get(doc, p), dict)]


def get(doc: Any, path: Path_) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def mutations(
    shape: Any,
    *,
    protected: frozenset[str] = frozenset(),
    directories: frozenset[str] = frozenset(),
    extra_keys: Sequence[str] = (),
    special: Sequence[tuple[Path_, st.SearchStrategy[Any]]] = (),
    allowed_plugins: frozenset[str] = frozenset(),
    file_names: frozenset[str] = frozenset({"name"}),
) -> st.SearchStrategy[list[Mutation]]:
    """1-3 mutations of a document shaped like `shape`.

    `protected` keys (a host object's name) are only set to non-strings, never deleted;
    `directories` keys take a nasty suffix or a non-string; `extra_keys` are keys the
    code reads that the template lacks; `special` adds hand-picked values for a path;
    `file_names` keys (host-local makes a directory of the network name) take no value
    with a "/" or "..": it would write outside the test's directories.
    """
    all_paths = paths(shape)
    free = [p for p in all_paths if p[-1] not in protected | directories | file_names]
    named = [p for p in all_paths if p[-1] in file_names]
    guarded = [p for p in all_paths if p[-1] in protected]
    dirs = [p for p in all_paths if p[-1] in directories]
    values = json_values().filter(lambda v: safe(v, allowed_plugins))
    # Neither a string nor null (null is "unset" to Go: the plugin's default on the host).
    non_strings = json_values().filter(
        lambda v: v is not None and not isinstance(v, str | Big) and safe(v)
    )
    plain = values.filter(lambda v: not (isinstance(v, str) and ("/" in v or ".." in v)))

    def key_values(key: str) -> st.SearchStrategy[Any]:
        """What an added key takes: the rules of the key Go would decode it as."""
        if _fold(key) in {_fold(k) for k in protected | directories}:
            return non_strings
        if _fold(key) in {_fold(k) for k in file_names}:
            return plain
        return values

    added_paths = st.builds(
        lambda where, key: (*where, key),
        st.sampled_from(containers(shape)),
        st.sampled_from(extra_keys or ["extra"]) | st.text(max_size=8),
    )
    options = [
        st.builds(Mutation, st.just("set"), st.sampled_from(free), values),
        # Never delete a host object's name or a directory key alone: the plugin would
        # fall back to its default (the bridge plugin's cni0, host-local's
        # /var/lib/cni/networks) on the host.
        st.builds(
            Mutation,
            st.just("delete"),
            st.sampled_from([p for p in all_paths if p[-1] not in protected | directories]),
        ),
        added_paths.flatmap(
            lambda path: st.builds(Mutation, st.just("set"), st.just(path), key_values(path[-1]))
        ),
    ]
    if named:
        options.append(st.builds(Mutation, st.just("set"), st.sampled_from(named), plain))
    if guarded:
        options.append(st.builds(Mutation, st.just("set"), st.sampled_from(guarded), non_strings))
    if dirs:
        # No "..": "ipam" + "../../x" leaves the test's directories.
        suffixes = nasty_strings().filter(
            lambda v: ".." not in (v.value if isinstance(v, Big) else v)
        )
        options.append(st.builds(Mutation, st.just("suffix"), st.sampled_from(dirs), suffixes))
        options.append(st.builds(Mutation, st.just("set"), st.sampled_from(dirs), non_strings))
    for path, strategy in special:
        options.append(st.builds(Mutation, st.just("set"), st.just(path), strategy))
    return st.lists(st.one_of(options), min_size=1, max_size=3)


def _fold(key: str) -> str:
    """A JSON key as Go's decoder matches it to a field: case-insensitively."""
    return key.casefold()


def apply(doc: Any, muts: Sequence[Mutation]) -> Any:
    """`doc` (a JSON copy) with the mutations applied; ones whose path no longer exists
    or lies below a value an earlier mutation set or deleted (whose rules did not allow
    for what follows: a host-local `ipam` rebuilt key by key, without the test's dataDir)
    are skipped, and so is a "suffix" of a value that is no longer the template's string
    (`null` + "x" is the relative path "Nonex")."""
    doc = json.loads(json.dumps(doc))
    replaced: list[Path_] = []
    for m in muts:
        if not m.path or any(m.path[: len(r)] == r and m.path != r for r in replaced):
            continue
        try:
            parent = get(doc, m.path[:-1])
            key = m.path[-1]
            if m.op == "delete":
                del parent[key]
                replaced.append(m.path)
            elif m.op == "suffix":
                if m.path in replaced or not isinstance(parent[key], str):
                    continue
                parent[key] = parent[key] + (m.value.value if isinstance(m.value, Big) else m.value)
            elif isinstance(parent, dict) or (isinstance(parent, list) and isinstance(key, int)):
                if isinstance(parent, list) and key >= len(parent):
                    parent.append(m.value)
                else:
                    parent[key] = m.value
                replaced.append(m.path)
        except (KeyError, IndexError, TypeError):
            continue
    return doc


# -- encodings -----------------------------------------------------------------------------


def encode(value: Any, ascii_only: bool = True) -> str:
    """JSON text of `value`; Raw tokens as is, NaN/Infinity as Python writes them."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Big):
        return json.dumps(value.value, ensure_ascii=ascii_only)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{encode(str(k), ascii_only)}:{encode(v, ascii_only)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


ENCODINGS = ("utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cesu")


def to_bytes(text: str, encoding: str) -> bytes:
    if encoding == "cesu":  # surrogates as 3-byte sequences: not UTF-8
        return text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "surrogatepass")


@dataclass(frozen=True)
class Encoded:
    """How a mutated document becomes bytes."""

    encoding: str = "utf-8"
    ascii_only: bool = True
    tail: str = ""  # appended after the document ("", "\n", "x", "{}", "\x00")

    def __call__(self, doc: Any) -> bytes:
        return to_bytes(encode(doc, self.ascii_only) + self.tail, self.encoding)


def encodings() -> st.SearchStrategy[Encoded]:
    return st.one_of(
        st.just(Encoded()),
        st.builds(
            Encoded,
            st.sampled_from(ENCODINGS),
            st.booleans(),
            st.sampled_from(["", "\n", " x", "{}", "\x00", "]"]),
        ),
    )


GARBAGE = (
    b"",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x00",
    b"null",
    b"[]",
    b"1e400",
    b"NaN",
    b'"\\ud800"',
    b"[" * DEEP,
    b'{"a":' * DEEP,
    b"{" * DEEP,
)


def garbage() -> st.SearchStrategy[bytes]:
    """Bytes that are no netconf: fixed nasties and random bytes."""
    return st.one_of(st.sampled_from(GARBAGE), st.binary(max_size=64))


class Document:
    """A mutated template, encoded; or `raw` bytes instead of any template."""

    def __init__(
        self, muts: tuple[Mutation, ...] = (), how: Encoded | None = None, raw: bytes | None = None
    ) -> None:
        self.muts, self.how, self.raw = muts, how or Encoded(), raw

    def render(self, template: Any, finish: Callable[[Any], Any] = lambda d: d) -> bytes:
        if self.raw is not None:
            return self.raw
        return self.how(finish(apply(template, self.muts)))

    def text(self, template: Any) -> str:
        """The document as a string (an annotation value, a NAD's spec.config)."""
        if self.raw is not None:
            return self.raw.decode("utf-8", "surrogateescape")
        return encode(apply(template, self.muts), self.how.ascii_only) + self.how.tail

    def __repr__(self) -> str:
        if self.raw is not None:
            short = (
                self.raw
                if len(self.raw) <= 40
                else self.raw[:20] + b"...(%d bytes)" % len(self.raw)
            )
            return f"Document(raw={short!r})"
        how = "" if self.how == Encoded() else f", how={self.how!r}"
        return f"Document(muts={list(self.muts)!r}{how})"


def documents(muts: st.SearchStrategy[list[Mutation]]) -> st.SearchStrategy[Document]:
    return st.one_of(
        st.builds(Document, muts.map(tuple), encodings()),
        st.builds(Document, muts.map(tuple), st.just(Encoded())),
        st.builds(Document, st.just(()), encodings()),
        st.builds(Document, st.just(()), st.just(Encoded()), garbage()),
    )
