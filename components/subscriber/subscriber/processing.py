"""Messages in, one record out for each: a result for the results topic or an error for the error topic.

Kept apart from the IPC loop so every kind of bad input can be tested without a socket: nothing that arrives
may stop the component, and every message gets exactly one answer, in the order the messages came. The messages
of a batch are checked one by one and their records scored in one `predict` call: a bad message is answered with
its error and costs the others nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from subscriber.inference import InvalidInput, Limits, Model, records_from_event
from subscriber.intake import Message


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
        (outcome,) = self.process_batch([Message(topic, message)])
        return outcome

    def process_batch(self, messages: list[Message]) -> list[Outcome]:
        """One outcome per message, in order. `inference_ms` is the batch's: from its start to its predictions."""
        started = time.perf_counter()
        checked: list[tuple[Message, list[Any], list[list[float]]] | Outcome] = []
        for message in messages:
            try:
                records = records_from_event(self._event(message.payload), self.limits)
                checked.append((message, records, self.model.rows(records)))
            except InvalidInput as exc:
                size = len(message.payload) if isinstance(message.payload, bytes) else None
                record = {"topic": message.topic, "error": exc.reason, "message": str(exc), "bytes": size}
                if exc.feature is not None:
                    record["feature"] = exc.feature
                checked.append(Outcome(False, record))
        rows = [row for item in checked if not isinstance(item, Outcome) for row in item[2]]
        predictions = iter(self.model.predict_rows(rows) if rows else [])
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        version = {"model_version": self.model_version} if self.model_version else {}
        outcomes = []
        for item in checked:
            if isinstance(item, Outcome):
                outcomes.append(item)
                continue
            message, records, _ = item
            mine = [next(predictions) for _ in records]
            result = {"topic": message.topic, "predictions": mine, "records": len(records), "inference_ms": elapsed_ms}
            outcomes.append(Outcome(True, {**result, **version}, records))
        return outcomes

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
