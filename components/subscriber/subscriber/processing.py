"""One IPC message in, one record out: a result for the results topic or an error for the error topic.

Kept apart from the IPC loop so every kind of bad input can be tested without a socket: nothing that arrives
may stop the component, and every message gets exactly one answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from subscriber.inference import InvalidInput, Limits, Model, records_from_event


@dataclass(frozen=True)
class Outcome:
    ok: bool
    record: dict[str, Any]
    scored: list[Any] = field(default_factory=list, compare=False)  # the records, for a challenger to score too

    def log_line(self) -> str:
        if self.ok:
            # The reference's device log line: `result: [6.573914 4.869721]`.
            return "result: [" + " ".join(json.dumps(p) for p in self.record["predictions"]) + "]"
        return f"rejected message on {self.record['topic']}: {self.record['error']}: {self.record['message']}"


class MessageProcessor:
    def __init__(self, model: Model, limits: Limits, model_version: str = "") -> None:
        self.model = model
        self.limits = limits
        self.model_version = model_version  # the model component's version, named in every result

    def process(self, topic: str, message: bytes | dict[str, Any]) -> Outcome:
        """Score a binary (JSON bytes) or JSON message; never raises for bad input."""
        started = time.perf_counter()
        size = len(message) if isinstance(message, bytes) else None
        try:
            event = self._event(message)
            records = records_from_event(event, self.limits)
            predictions = self.model.predict(records)
        except InvalidInput as exc:
            return Outcome(False, {"topic": topic, "error": exc.reason, "message": str(exc), "bytes": size})
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Outcome(
            True,
            {
                "topic": topic,
                "predictions": predictions,
                "records": len(records),
                "inference_ms": round(elapsed_ms, 3),
                **({"model_version": self.model_version} if self.model_version else {}),
            },
            records,
        )

    def _event(self, message: bytes | dict[str, Any]) -> Any:
        if isinstance(message, dict):
            return message
        if len(message) > self.limits.max_body_bytes:
            raise InvalidInput(
                "too_large",
                f"the message is {len(message)} bytes, over the {self.limits.max_body_bytes} limit",
            )
        try:
            return json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput("invalid_json", f"the message is not a JSON event: {exc}") from None
