"""The `result: [6.573914 4.869721]` line the reference logged for every message, and what `make deploy` reads
back as a device's prediction; above `per_second` (if set) the rest of each second's results are counted and
said on the next line written, so the log's cost stays bounded under a flood."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from subscriber.processing import Outcome

log = logging.getLogger("subscriber")


class ResultLog:
    def __init__(self, per_second: float = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second, self._clock = per_second, clock
        self._window = 0.0
        self._written = 0  # lines in the current second
        self.skipped = 0  # results not written since the last line

    def result(self, outcome: Outcome) -> None:
        if self.per_second > 0:
            now = self._clock()
            if now - self._window >= 1.0:
                self._window, self._written = now, 0
            if self._written >= self.per_second:
                self.skipped += 1
                return
            self._written += 1
        line = outcome.log_line()
        if self.skipped:
            line, self.skipped = f"{line} ({self.skipped} results not logged before it)", 0
        log.info(line)
