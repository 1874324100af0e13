"""A challenger model scored in the champion's shadow: the same records, scored after the champion's result is out,
its predictions and the running agreement between the two published on a topic of their own.

Agreement is over every prediction the two made on the same records since the component started: how many, the
mean absolute difference and the largest one. That is what decides a promotion without labels on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from subscriber.inference import Model

Prediction = float | list[float]


@dataclass
class Agreement:
    count: int = 0
    total_abs_diff: float = 0.0
    max_abs_diff: float = 0.0

    def add(self, champion: list[Prediction], challenger: list[Prediction]) -> None:
        """One message's predictions by both (a multi-output model's, output by output)."""
        for ours, theirs in zip(_flat(champion), _flat(challenger), strict=True):
            difference = abs(ours - theirs)
            self.count += 1
            self.total_abs_diff += difference
            self.max_abs_diff = max(self.max_abs_diff, difference)

    def summary(self) -> dict[str, float | int]:
        mean = self.total_abs_diff / self.count if self.count else 0.0
        return {"count": self.count, "mean_abs_diff": round(mean, 6), "max_abs_diff": round(self.max_abs_diff, 6)}


def _flat(predictions: list[Prediction]) -> list[float]:
    return [x for p in predictions for x in (p if isinstance(p, list) else [p])]


class Shadow:
    def __init__(self, challenger: Model, model_version: str) -> None:
        self.challenger, self.model_version = challenger, model_version
        self.agreement = Agreement()

    def score(self, topic: str, records: list[Any], champion: list[Prediction]) -> dict[str, Any]:
        """The shadow record for records the champion scored as `champion`."""
        predictions = self.challenger.predict(records)
        self.agreement.add(champion, predictions)
        return {
            "topic": topic,
            "model_version": self.model_version,
            "champion": champion,
            "challenger": predictions,
            "agreement": self.agreement.summary(),
        }


def log_line(record: dict[str, Any]) -> str:
    """`shadow: count=4 mean_abs_diff=0.21 max_abs_diff=0.5`, which `make status` reads from the log."""
    return "shadow: " + " ".join(f"{key}={value}" for key, value in record["agreement"].items())
