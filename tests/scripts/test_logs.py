"""`make logs` (scripts/logs.py) over log folders laid out as a core writes them: one file per component, each line
stamped as the nucleus stamps them. Which device and component a line is from, the span, the filter, following a
file as it grows (and after it is rotated), and a thing or component nobody has named with what exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scripts import logs
from scripts.product import Components

NAMES = Components("com.edgeml")
NOW = datetime(2026, 12, 8, 2, 0, 0, tzinfo=UTC)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def folders(tmp_path: Path) -> dict[str, Path]:
    found = {}
    for thing in ("pi-1", "pi-1-arm64"):
        folder = tmp_path / thing / "logs"
        folder.mkdir(parents=True)
        found[thing] = folder
    return found


def write(folder: Path, component: str, *lines: tuple[datetime, str]) -> Path:
    path = folder / f"{component}.log"
    with path.open("a") as log:
        for at, text in lines:
            log.write(f"{stamp(at)} [INFO] {component}: stdout. {text}\n")
    return path


def test_the_last_span_of_every_device_in_time_order_with_their_device(tmp_path: Path) -> None:
    where = folders(tmp_path)
    write(where["pi-1"], NAMES.subscriber, (NOW - timedelta(hours=2), "result: [5.1]"),
          (NOW - timedelta(minutes=3), "result: [5.2]"))  # fmt: skip
    write(where["pi-1-arm64"], NAMES.subscriber, (NOW - timedelta(minutes=4), "result: [6.1]"))
    write(where["pi-1"], NAMES.publisher, (NOW - timedelta(minutes=1), "published message 7"))
    files = logs.files(where, NAMES, "", "")
    lines = logs.since(timedelta(minutes=10), files, "", NOW)
    assert [(line.thing, line.component, line.text.rsplit(". ", 1)[1]) for line in lines] == [
        ("pi-1-arm64", "subscriber", "result: [6.1]"),
        ("pi-1", "subscriber", "result: [5.2]"),
        ("pi-1", "publisher", "published message 7"),
    ]
    only = logs.since(timedelta(hours=3), logs.files(where, NAMES, "pi-1", "subscriber"), "result:", NOW)
    assert [line.text[-5:] for line in only] == ["[5.1]", "[5.2]"]


def test_following_prints_what_is_written_after_it_began_across_a_rotation(tmp_path: Path) -> None:
    """New lines only; a line still being written waits for its end; when the core rotates the file (as the nucleus
    names rotated files), what the old file got after the last look is read from it, then the new file."""
    where = folders(tmp_path)
    path = write(where["pi-1"], NAMES.subscriber, (NOW, "result: [1]"))
    follower = logs.Follower(logs.files(where, NAMES, "pi-1", "subscriber"), "result:")
    assert follower.new() == []
    write(where["pi-1"], NAMES.subscriber, (NOW, "result: [2]"), (NOW, "noise"))
    with path.open("a") as log:
        log.write("half a li")  # still being written: waits for its end
    assert [line.text[-3:] for line in follower.new()] == ["[2]"]
    with path.open("a") as log:
        log.write("ne, result: [4]\n")
    write(where["pi-1"], NAMES.subscriber, (NOW, "result: [5]"))
    path.rename(path.with_name(f"{path.stem}_2026_12_08_01_0.log"))  # rotated: the core begins a new file
    write(where["pi-1"], NAMES.subscriber, (NOW, "result: [6]"))
    assert [(line.thing, line.text[-3:]) for line in follower.new()] == [("pi-1", "[4]"), ("pi-1", "[5]"),
                                                                         ("pi-1", "[6]")]  # fmt: skip


@pytest.mark.parametrize(
    ("thing", "component", "named"),
    [("pi-9", "", "its devices: pi-1, pi-1-arm64"), ("", "database", "subscriber, publisher, model, nucleus")],
)
def test_a_thing_or_component_nobody_has_is_named_with_what_exists(
    tmp_path: Path, thing: str, component: str, named: str
) -> None:
    with pytest.raises(logs.UnknownLog, match=named):
        logs.files(folders(tmp_path), NAMES, thing, component)
