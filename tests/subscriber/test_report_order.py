"""A result is published before its `result:` line is written: the line is for people, the answer is waiting.

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


class Recorder:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def publish_to_topic_async(self, topic: str, publish_message: Any) -> concurrent.futures.Future[Any]:
        self.events.append(f"publish {topic}")
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        done.set_result(None)
        return done


def test_the_result_is_published_before_its_line_is_logged(
    seed: Path, samples: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    caplog.set_level(logging.INFO, logger="subscriber")

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append(record.getMessage().split(":", 1)[0])

    subscriber = Subscriber(
        cast(Any, Recorder(events)), Config(), MessageProcessor(Model(seed / "xgboost_wine_quality.json"), Limits())
    )
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
