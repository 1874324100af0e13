"""Which identity the local cloud allowed which action, the part of CloudTrail's management events a least-privilege
review reads: a test runs commands as a user and then sees that its policy allows nothing they never used.

Distinct (principal, action) pairs only, so the record stays small however long a stack runs; written to the file
the stack names (`allowed.json` in its folder), rewritten whole on each new pair."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

_LOCK = threading.Lock()
_SEEN: set[tuple[str, str]] = set()
_FILE: list[Path] = []


def record_to(path: Path) -> None:
    with _LOCK:
        _FILE[:] = [path]


def allowed(principal: str, action: str) -> None:
    with _LOCK:
        if not _FILE or (principal, action) in _SEEN:
            return
        _SEEN.add((principal, action))
        partial = _FILE[0].with_suffix(".partial")
        pairs = [{"principal": p, "action": a} for p, a in sorted(_SEEN)]
        partial.write_text(json.dumps(pairs, indent=1))
        os.replace(partial, _FILE[0])


def read(path: Path) -> dict[str, set[str]]:
    """principal -> the actions it was allowed."""
    found: dict[str, set[str]] = {}
    for pair in json.loads(path.read_text()) if path.exists() else []:
        found.setdefault(pair["principal"], set()).add(pair["action"])
    return found
