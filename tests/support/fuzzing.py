"""How many examples a property test draws: as the test says under the default profile, ten times as many under
`HYPOTHESIS_PROFILE=wide` (`make fuzz`), which also draws a new seed each run (tests/conftest.py)."""

from __future__ import annotations

import os

WIDE = os.environ.get("HYPOTHESIS_PROFILE") == "wide"


def examples(count: int) -> int:
    return count * 10 if WIDE else count
