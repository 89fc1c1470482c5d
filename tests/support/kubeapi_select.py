"""Label and field selectors, parsed and matched as the API server does.

Label selectors support the full apimachinery grammar (``=``, ``==``, ``!=``,
``in``, ``notin``, ``exists``, ``!exists``, ``>``, ``<``). Field selectors support
``=``, ``==`` and ``!=`` over the field labels each resource declares; an
unknown label is a 400, as on a real cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .kubeapi_status import bad_request

JSON = dict[str, Any]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^({_KEY})\s+(in|notin)\s*\((.*)\)$")
_OP_RE = re.compile(rf"^({_KEY})\s*(==|=|!=|>|<)\s*(\S*)$")
_EXISTS_RE = re.compile(rf"^(!?)\s*({_KEY})$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.key)
        if self.op == "exists":
            return have is not None
        if self.op == "!":
            return have is None
        if self.op in ("=", "in"):
            return have is not None and have in self.values
        if self.op in ("!=", "notin"):
            return have is None or have not in self.values
        if have is None or not have.lstrip("-").isdigit():
            return False
        limit = int(self.values[0])
        return int(have) > limit if self.op == ">" else int(have) < limit


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _check_value(value: str, selector: str) -> str:
    if not re.fullmatch(_VALUE, value) or len(value) > 63:
        raise bad_request(
            f"unable to parse requirement: invalid label value: {value!r} in {selector!r}"
        )
    return value


def parse_labels(selector: str) -> list[Requirement]:
    reqs: list[Requirement] = []
    if not selector.strip():
        return reqs
    for raw in _split_top_level(selector):
        part = raw.strip()
        if m := _SET_RE.match(part):
            values = tuple(_check_value(v.strip(), selector) for v in m.group(4).split(","))
            reqs.append(Requirement(m.group(1), m.group(3), values))
        elif m := _OP_RE.match(part):
            key, op, value = m.group(1), m.group(3), m.group(4)
            if op in (">", "<") and not value.lstrip("-").isdigit():
                raise bad_request(f"unable to parse requirement: {value!r} is not an integer")
            reqs.append(
                Requirement(key, "=" if op == "==" else op, (_check_value(value, selector),))
            )
        elif m := _EXISTS_RE.match(part):
            reqs.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
        else:
            raise bad_request(f"unable to parse requirement: found {part!r} in {selector!r}")
    return reqs


def _split_escaped(text: str) -> list[str]:
    """Split on commas not preceded by a backslash; escapes are kept."""
    parts, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == ",":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _split_term(term: str) -> tuple[str, str, str] | None:
    """``label op value`` at the first unescaped operator, with escapes removed."""
    i = 0
    while i < len(term):
        ch = term[i]
        if ch == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                value = re.sub(r"\\(.)", r"\1", term[i + len(op) :])
                return term[:i].strip(), op, value.strip()
        i += 1
    return None


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool

    def matches(self, fields: dict[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) != self.negate


def parse_fields(
    selector: str, supported: tuple[str, ...], unsupported: Callable[[str], str]
) -> list[FieldTerm]:
    """Parse ``selector``; ``unsupported(label)`` words the error for an unknown label."""
    terms: list[FieldTerm] = []
    if not selector.strip():
        return terms
    for part in _split_escaped(selector):
        split = _split_term(part)
        if split is None or not split[0]:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        label, op, value = split
        if label not in supported:
            raise bad_request(unsupported(label))
        terms.append(FieldTerm(label, value, op == "!="))
    return terms


def field_values(obj: JSON, labels: tuple[str, ...]) -> dict[str, str]:
    """The value of each dotted field label in ``obj``, as the server's GetAttrs renders it."""
    out: dict[str, str] = {}
    for label in labels:
        cur: Any = obj
        for part in label.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, bool):
            out[label] = "true" if cur else "false"
        else:
            out[label] = "" if cur is None else str(cur)
    return out


@dataclass(frozen=True)
class Selector:
    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldTerm, ...] = ()
    field_labels: tuple[str, ...] = ()
    namespace: str | None = None

    def matches(self, obj: JSON) -> bool:
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        labels = meta.get("labels") or {}
        if not all(r.matches(labels) for r in self.labels):
            return False
        if self.fields:
            values = field_values(obj, self.field_labels)
            return all(t.matches(values) for t in self.fields)
        return True

    @property
    def empty(self) -> bool:
        return not self.labels and not self.fields
