"""JSON schemas shipped with multinet (data files: netconf, conflist, every plugin, the
IPAMs) and their loader, `load`. No modules.
"""

from __future__ import annotations

import json
import os
from functools import cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The files beside this module (pip installs packages as directories; importlib.resources
# would cost thin mode ~5 ms of imports per call for the same read).
HERE = os.path.dirname(__file__)


@cache
def load(name: str) -> dict[str, Any]:
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
