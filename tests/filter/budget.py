"""How many random cases the property tests try. CI runs the default; set
CONSULPY_FILTER_EXAMPLES_SCALE=50 (say) for a long local sweep."""

from __future__ import annotations

import os

SCALE = max(1, int(os.environ.get("CONSULPY_FILTER_EXAMPLES_SCALE", "1")))


def examples(base: int) -> int:
    return base * SCALE
