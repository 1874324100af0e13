"""What the subscriber publishes and logs, in which order and how often: a result is published before its `result:`
line is written (the line is for people, the answer is waiting), and shadow lines are one a batch.

The IPC client here is a recorder (a stand-in, said so: the order of two calls in one process is what is under
test, and the real client over a socket is exercised in test_ipc_loop.py).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
from pathlib import Path
from typing import Any, cast

import pytest
from subscriber.app import Config, Subscriber
from subscriber.inference import Limits, Model
from subscriber.intake import Message
from subscriber.processing import MessageProcessor
from subscriber.shadow import Shadow


class Recorder:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def publish_to_topic_async(self, topic: str, publish_message: Any) -> concurrent.futures.Future[Any]:
        self.events.append(f"publish {topic}")
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        done.set_result(None)
        return done


def recorded(seed: Path, events: list[str]) -> Subscriber:
    """A subscriber with the reference model whose publishes are recorded in `events`."""
    model = Model(seed / "xgboost_wine_quality.json")
    return Subscriber(cast(Any, Recorder(events)), Config(), MessageProcessor(model, Limits()))


def test_the_result_is_published_before_its_line_is_logged(
    seed: Path, samples: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    caplog.set_level(logging.INFO, logger="subscriber")

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append(record.getMessage().split(":", 1)[0])

    subscriber = recorded(seed, events)
    handler = Lines()
    logging.getLogger("subscriber").addHandler(handler)
    try:
        good = json.dumps({"body": json.dumps(samples), "isBase64Encoded": False}).encode()
        batch = [Message("local/topic", good), Message("local/topic", b"not json")]
        for outcome in subscriber.processor.process_batch(batch):
            subscriber.report(outcome)
    finally:
        logging.getLogger("subscriber").removeHandler(handler)
    rejected = "rejected message on local/topic"
    assert events == ["publish edgeml/predictions", "result", "publish edgeml/errors", rejected]


class Challenger:
    """A stand-in challenger (its real process is tested in test_shadow.py): one prediction a record, and a
    refusal of any batch holding a record marked `refuse`."""

    def predict(self, records: list[Any]) -> list[float | list[float]]:
        if any(record.get("refuse") for record in records):
            raise ValueError("refused")
        return [1.0 for _ in records]


def test_shadow_records_are_published_one_a_message_and_logged_one_a_batch(
    seed: Path, samples: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The shadow line's counts are running totals, so under load (batches of what waited) one line a batch says
    what a line a message would have; a failure is still a line of its own."""
    events: list[str] = []
    caplog.set_level(logging.INFO, logger="subscriber")
    subscriber = recorded(seed, events)
    shadow = Shadow(Challenger(), "1.0.0")
    body = json.dumps({"body": json.dumps(samples), "isBase64Encoded": False}).encode()
    refused = json.dumps({"body": json.dumps([{**samples[0], "refuse": 1}]), "isBase64Encoded": False}).encode()
    outcomes = subscriber.processor.process_batch([Message("local/topic", m) for m in (body, refused, body)])
    assert all(outcome.ok for outcome in outcomes)  # the champion ignores a field it has no feature for
    subscriber.report_shadow(shadow, outcomes)
    assert events == ["publish edgeml/shadow"] * 3
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith("shadow:")]
    assert lines == [
        ("WARNING", "shadow: count=2 mean_abs_diff=4.721818 max_abs_diff=5.573914 failures=1 dropped=0"),
        ("INFO", "shadow: count=4 mean_abs_diff=4.721818 max_abs_diff=5.573914 failures=1 dropped=0"),
    ]
