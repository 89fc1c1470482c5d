"""JSON schemas shipped with multinet (data files: netconf, conflist, every plugin, the
IPAMs) and their loader, `load`. No modules.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(__package__).joinpath(name).read_text())
    return data
