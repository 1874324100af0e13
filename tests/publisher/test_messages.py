"""The publisher's messages are the reference's format, and the subscriber scores them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from publisher.messages import SamplesError, Settings, encode, load_records, messages
from subscriber.inference import Model, handler


def test_bundled_samples_are_the_reference_records(samples: list[dict[str, Any]]) -> None:
    assert load_records("") == samples


def test_messages_are_scored_by_the_subscriber_as_the_reference(reference_model: Model) -> None:
    settings = Settings(batch_size=2, count_limit=1)
    for as_base64 in (False, True):
        (payload,) = messages(load_records(""), Settings(**{**settings.__dict__, "base64": as_base64}))
        event = json.loads(payload)
        assert event["isBase64Encoded"] is as_base64
        assert handler(event, None, reference_model)["body"] == [6.573914, 4.869721]


def test_batches_cycle_through_the_records_up_to_the_limit() -> None:
    records = [{"n": i} for i in range(3)]
    sent = [json.loads(json.loads(m)["body"]) for m in messages(records, Settings(batch_size=2, count_limit=4))]
    assert sent == [[{"n": 0}, {"n": 1}], [{"n": 2}, {"n": 0}], [{"n": 1}, {"n": 2}], [{"n": 0}, {"n": 1}]]


def test_no_limit_means_forever() -> None:
    stream = messages([{"n": 1}], Settings(count_limit=0))
    assert len([next(stream) for _ in range(1000)]) == 1000


def test_settings_from_component_configuration() -> None:
    settings = Settings.from_component(
        {
            "topic": "a/b",
            "interval": "0.5",
            "batchSize": 3,
            "base64": "true",
            "MSG_COUNT_LIMIT": "7",
            "accessControl": {},
        }
    )
    assert settings == Settings(topic="a/b", interval=0.5, batch_size=3, base64=True, count_limit=7)
    with pytest.raises(ValueError, match="batchSize >= 1"):
        Settings.from_component({"batchSize": 0})


@pytest.mark.parametrize("content", ["not json", "{}", "[]", "[1, 2]"])
def test_bad_samples_files_are_named(tmp_path: Path, content: str) -> None:
    path = tmp_path / "samples.json"
    path.write_text(content)
    with pytest.raises(SamplesError, match=str(path.name)):
        load_records(str(path))


def test_encode_keeps_the_reference_shape() -> None:
    assert json.loads(encode([{"a": 1}], False)) == {"body": '[{"a": 1}]', "isBase64Encoded": False}
