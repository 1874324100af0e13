"""`make logs`: the kit's components' log lines from each core device's log folder, newest last, with the device.

A core writes one file per component under its logs folder (`/greengrass/v2/logs/<component>.log` on a device;
the nucleus its own `greengrass.log`), each line stamped `2026-12-08T01:02:03.456Z` as the nucleus stamps them.
Lines are taken from SINCE ago on (a line without a stamp, a continuation, goes with the one before it), filtered
by GREP, and with `follow` read as they are written until Ctrl-C. Where the folders are is the target's to say:
on the local cloud, every device of the stack, emulated ones included.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from scripts.errors import ToolError
from scripts.product import Components

KINDS = ("subscriber", "publisher", "model", "nucleus")
NUCLEUS_LOG = "greengrass.log"
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ")
POLL = 0.25  # seconds between two looks at the files when following
NOT_ON_AN_ACCOUNT = (
    "make logs reads the devices' log folders of the local cloud only: on an account the kit does not yet deploy "
    "aws.greengrass.LogManager, which uploads them to CloudWatch Logs; read /greengrass/v2/logs/<component>.log on "
    "the device"
)


class UnknownLog(ToolError):
    """A thing or component nobody has; the message names what exists. A usage error: exit 2."""


@dataclass(frozen=True)
class Line:
    thing: str
    component: str  # one of KINDS
    text: str


def files(folders: dict[str, Path], names: Components, thing: str, kind: str) -> dict[tuple[str, str], Path]:
    """(thing, kind) -> its log file, for `thing` (every device when empty) and `kind` (every kind when empty)."""
    if thing and thing not in folders:
        raise UnknownLog(f"no device {thing!r} in this stack; its devices: {', '.join(sorted(folders)) or 'none'}")
    if kind and kind not in KINDS:
        raise UnknownLog(f"no component {kind!r}; the components: {', '.join(KINDS)}")
    by_kind = {"subscriber": f"{names.subscriber}.log", "publisher": f"{names.publisher}.log",
               "model": f"{names.model}.log", "nucleus": NUCLEUS_LOG}  # fmt: skip
    return {
        (device, each): folder / by_kind[each]
        for device, folder in sorted(folders.items())
        if not thing or device == thing
        for each in KINDS
        if not kind or each == kind
    }


def since(span: timedelta, logs: dict[tuple[str, str], Path], grep: str, now: datetime | None = None) -> list[Line]:
    """Every line written in the last `span` that contains `grep`, in the order of their stamps."""
    start = (now or datetime.now(UTC)) - span
    found: list[tuple[str, int, Line]] = []
    for (thing, kind), path in logs.items():
        stamp = ""
        for number, text in enumerate(_lines(path)):
            stamped = STAMP.match(text)
            stamp = stamped[1] if stamped else stamp
            if stamp and _at(stamp) >= start and grep in text:
                found.append((stamp, number, Line(thing, kind, text)))
    return [line for _, _, line in sorted(found, key=lambda item: (item[0], item[2].thing, item[1]))]


@dataclass
class Follower:
    """New lines as the files grow: each file read from where it ended when following began (or from its start when
    it appears later, or was rotated and began again)."""

    logs: dict[tuple[str, str], Path]
    grep: str
    _at: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._at = {key: _size(path) for key, path in self.logs.items()}

    def new(self) -> list[Line]:
        found = []
        for key, path in self.logs.items():
            size, start = _size(path), self._at.get(key, 0)
            if size < start:
                # Rotated: what the old file got after the last look is in the newest rotated one, then a new file.
                older = rotated(path)
                if older:
                    found += self._read(key, older[-1], start, _size(older[-1]), whole=True)
                start = self._at[key] = 0
            found += self._read(key, path, start, size)
        return found

    def _read(self, key: tuple[str, str], path: Path, start: int, end: int, whole: bool = False) -> list[Line]:
        if end <= start:
            return []
        with path.open("rb") as log:
            log.seek(start)
            data = log.read(end - start)
        complete = len(data) if whole else data.rfind(b"\n") + 1  # a line still being written waits for its end
        if not whole:
            self._at[key] = start + complete
        return [Line(*key, text) for text in data[:complete].decode(errors="replace").splitlines() if self.grep in text]


def rotated(path: Path) -> list[Path]:
    """A log's rotated files, oldest first: <name>_<yyyy_MM_dd_HH>_<index>.log, as the nucleus names them."""
    pattern = re.compile(rf"^{re.escape(path.stem)}_(\d{{4}}_\d\d_\d\d_\d\d)_(\d+)\.log$")
    named = [(m[1], int(m[2]), p) for p in path.parent.glob(f"{path.stem}_*.log") if (m := pattern.match(p.name))]
    return [p for _, _, p in sorted(named)]


def follow(follower: Follower, say: Callable[[Line], None], sleep: Callable[[float], None] = time.sleep) -> NoReturn:
    """Says every new line as it comes, until the caller is interrupted (Ctrl-C)."""
    while True:
        for line in follower.new():
            say(line)
        sleep(POLL)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []  # a component this device never ran


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def record(lines: list[Line]) -> dict[str, Any]:
    return {"lines": [{"thing": line.thing, "component": line.component, "line": line.text} for line in lines]}
