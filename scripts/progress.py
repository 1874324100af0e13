"""How long work reports what it is doing: one line at a time, to wherever the command line sends it (stdout for
people, stderr under `--json`). Standard library only, like scripts/building/machine.py which uses it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

Progress = Callable[[str], None]
HEARTBEAT = 15.0  # seconds between two "still at it" lines of a slow step


class Outcome:
    """What the closing line of a step says: `said` (`done` unless the step sets it), its time, and `where` to look
    for more, if anywhere."""

    def __init__(self, where: str = "") -> None:
        self.said, self.where = "done", where


@contextlib.contextmanager
def step(progress: Progress, doing: str, where: str = "", heartbeat: float = HEARTBEAT) -> Iterator[Outcome]:
    """A slow step (a base image, an emulated build, a push, Terraform): one line as it starts, one every
    `heartbeat` seconds saying how long it has been at it, one with its time and outcome when it is done. A failure
    says nothing here: the error that ends the command says what went wrong."""
    started = time.monotonic()
    progress(f"{doing} ...")
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat):
            progress(f"  ... {doing}: {time.monotonic() - started:.0f} s so far")

    beating = threading.Thread(target=beat, daemon=True, name="heartbeat")
    beating.start()
    outcome = Outcome(where)
    try:
        yield outcome
    finally:
        stop.set()
        beating.join()
    seconds = f"{time.monotonic() - started:.0f} s"
    progress(f"{doing}: {outcome.said} ({seconds}{'; ' + outcome.where if outcome.where else ''})")
