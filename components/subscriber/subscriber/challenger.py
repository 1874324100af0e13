"""The challenger model in a process of its own: whatever it does on some input (a crash in libxgboost, a hang, an
exception), the champion's process goes on serving results.

`python -m subscriber.challenger MODEL` loads the model, says `{"ready": true}` on a line, then answers each line
of JSON records on stdin with one line: `{"predictions": [...]}` or `{"error": "..."}`. `ChallengerProcess` runs
it, waits for each answer at most `timeout` seconds, and starts it again after it died (ChallengerFailed saying how).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from subscriber.inference import InvalidInput, Model, ModelError

Prediction = float | list[float]
NICENESS = 19  # the worker's


class ChallengerFailed(RuntimeError):
    """The challenger gave no predictions for these records; the message says why (its exit, a timeout, its error)."""


class ChallengerProcess:
    def __init__(self, path: Path, timeout: float = 5.0, command: list[str] | None = None) -> None:
        """`command`: how the worker is started (default: this Python, `-m subscriber.challenger PATH`)."""
        self.path, self.timeout = path, timeout
        self.command = command or [sys.executable, "-m", "subscriber.challenger", str(path)]
        self._process: subprocess.Popen[str] | None = None
        self.starts = 0

    def predict(self, records: list[Any]) -> list[Prediction]:
        process = self._running()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(records) + "\n")
            process.stdin.flush()
        except OSError:
            raise self._failed("it stopped reading") from None
        answer = _line(process.stdout, self.timeout)
        if answer is None:
            raise self._failed(f"no answer within {self.timeout:.0f}s")
        if not answer:
            raise self._failed("it died")
        reply = json.loads(answer)
        if "error" in reply:
            raise ChallengerFailed(str(reply["error"]))
        predictions: list[Prediction] = reply["predictions"]
        return predictions

    def start(self) -> None:
        """The worker running with its model loaded, or ChallengerFailed (a model it cannot load, say)."""
        self._running()

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1
            )
            self.starts += 1
            assert self._process.stdout is not None
            ready = _line(self._process.stdout, max(self.timeout, 30.0))
            said = json.loads(ready) if ready else {}
            if "ready" not in said:
                raise self._failed(f"it did not start ({said.get('error', 'no word from it')})")
        return self._process

    def _failed(self, how: str) -> ChallengerFailed:
        process, self._process = self._process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.kill()
            code = process.wait()
        said = f", exit status {code}" if code not in (None, 0, -9) else ""
        return ChallengerFailed(f"challenger {self.path}: {how}{said}; started again for the next message")

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _line(stream: IO[str], timeout: float) -> str | None:
    """One line from the worker, "" at its end, None if none came within `timeout`."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


def serve(path: Path) -> int:
    # The lowest CPU priority a process may give itself: shadow work only takes what the champion leaves, and when
    # that is not enough it falls behind and is dropped, counted (shadow.Backlog), instead of slowing the champion.
    os.nice(NICENESS - os.nice(0))
    try:
        model = Model(path)
    except ModelError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            reply: dict[str, Any] = {"predictions": model.predict(json.loads(line))}
        except (InvalidInput, ValueError) as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1])))
