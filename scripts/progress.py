"""How long work reports what it is doing: one line at a time, to wherever the command line sends it (stdout for
people, stderr under `--json`). Standard library only, like scripts/machine.py which uses it."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]
