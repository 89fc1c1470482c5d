"""Helpers the networks unit tests share."""

from __future__ import annotations

from typing import Any


def route_fields(att: Any) -> dict[str, Any]:
    """The default-route fields an attachment or journal entry sets, as a dict."""
    out: dict[str, Any] = {}
    if att.replaced_default_routes:
        out["replaced_default_routes"] = list(att.replaced_default_routes)
    if att.default_route:
        out["default_route"] = list(att.default_route)
    return out
