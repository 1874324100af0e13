"""What every command returns: a frozen dataclass whose `record()` is its `--json` document (inside the envelope
scripts/cli.py adds) and what scripts/render.py reads for the lines a person sees."""

from __future__ import annotations

from typing import Any, Protocol


class Recorded(Protocol):
    def record(self) -> dict[str, Any]: ...
