"""A challenger model scored in the champion's shadow: the same records, scored after the champion's result is out,
its predictions and the running agreement between the two published on a topic of their own.

Agreement is over every prediction the two made on the same records since the component started: how many, the
mean absolute difference and the largest one. That is what decides a promotion without labels on the device.
The challenger runs in a process of its own (subscriber.challenger) and its work waits on a thread of its own
(`Backlog`): a challenger that crashes, hangs or falls behind costs the champion nothing; its failures and the work
dropped are counted in every shadow record.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from subscriber.challenger import ChallengerFailed
from subscriber.inference import InvalidInput

log = logging.getLogger("subscriber.shadow")

Prediction = float | list[float]


@dataclass
class Agreement:
    count: int = 0
    total_abs_diff: float = 0.0
    total_sq_diff: float = 0.0  # for the telemetry windows' root mean square difference
    max_abs_diff: float = 0.0

    def add(self, champion: list[Prediction], challenger: list[Prediction]) -> None:
        """One message's predictions by both (a multi-output model's, output by output)."""
        for ours, theirs in zip(_flat(champion), _flat(challenger), strict=True):
            difference = abs(ours - theirs)
            self.count += 1
            self.total_abs_diff += difference
            self.total_sq_diff += difference * difference
            self.max_abs_diff = max(self.max_abs_diff, difference)

    def summary(self) -> dict[str, float | int]:
        mean = self.total_abs_diff / self.count if self.count else 0.0
        return {"count": self.count, "mean_abs_diff": round(mean, 6), "max_abs_diff": round(self.max_abs_diff, 6)}


def _flat(predictions: list[Prediction]) -> list[float]:
    return [x for p in predictions for x in (p if isinstance(p, list) else [p])]


class Scorer(Protocol):
    def predict(self, records: list[Any]) -> list[Prediction]: ...


class Shadow:
    def __init__(self, challenger: Scorer, model_version: str) -> None:
        self.challenger, self.model_version = challenger, model_version
        self.agreement = Agreement()
        self.failures = 0  # messages the challenger gave no predictions for
        self.dropped = 0  # messages never given to it: it was too far behind (Backlog)

    def score(self, topic: str, records: list[Any], champion: list[Prediction]) -> dict[str, Any]:
        """The shadow record for records the champion scored as `champion`: the challenger's predictions, or why
        there are none."""
        (record,) = self.score_batch([(topic, records, champion)])
        return record

    def score_batch(self, scored: list[tuple[str, list[Any], list[Prediction]]]) -> list[dict[str, Any]]:
        """A shadow record per (topic, records, champion's predictions), the challenger asked once for them all; if
        it fails on the batch, each is asked alone, so that only the message it fails on counts as a failure."""
        try:
            predictions = self.challenger.predict([record for _, records, _ in scored for record in records])
        except (ChallengerFailed, InvalidInput, ValueError) as exc:
            if len(scored) > 1:
                return [record for item in scored for record in self.score_batch([item])]
            self.failures += 1
            return [self._record(*scored[0][::2], error=str(exc))]
        answers = iter(predictions)
        shadows = []
        for topic, records, champion in scored:
            theirs = [next(answers) for _ in records]
            self.agreement.add(champion, theirs)
            shadows.append(self._record(topic, champion, challenger=theirs))
        return shadows

    def _record(self, topic: str, champion: list[Prediction], **outcome: Any) -> dict[str, Any]:
        record = {"topic": topic, "model_version": self.model_version, "champion": champion, **outcome}
        return {**record, "agreement": self.agreement.summary(), "failures": self.failures, "dropped": self.dropped}


class Backlog:
    """Shadow work off the champion's path: one thread does it in order, in batches of what waited meanwhile (at
    most `batch`); at most `limit` messages wait, and past that a new one is dropped (the oldest already waited
    longest for a comparison that is as good with any message) and counted."""

    def __init__(
        self, shadow: Shadow, work: Callable[[Shadow, list[Any]], None], limit: int = 100, batch: int = 64
    ) -> None:
        self.shadow, self.work, self.batch = shadow, work, batch
        self._waiting: queue.Queue[Any] = queue.Queue(limit)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def offer(self, item: Any) -> bool:
        try:
            self._waiting.put_nowait(item)
        except queue.Full:
            self.shadow.dropped += 1
            return False
        return True

    def _run(self) -> None:
        while True:
            items = [self._waiting.get()]
            while len(items) < self.batch:
                try:
                    items.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                self.work(self.shadow, items)
            except Exception:  # the shadow never stops: the next message is compared again
                log.exception("shadow work failed")
            finally:
                for _ in items:
                    self._waiting.task_done()

    def join(self) -> None:
        """Until everything offered so far is done (for tests)."""
        self._waiting.join()


def log_line(record: dict[str, Any]) -> str:
    """`shadow: count=4 mean_abs_diff=0.21 max_abs_diff=0.5 failures=0 dropped=0`, which `make status` reads."""
    counts = {**record["agreement"], "failures": record["failures"], "dropped": record["dropped"]}
    return "shadow: " + " ".join(f"{key}={value}" for key, value in counts.items())
