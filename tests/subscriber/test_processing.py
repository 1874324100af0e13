"""Nothing that arrives stops the subscriber: each message gets exactly one answer, valid ones the right one."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from subscriber.inference import Limits, Model
from subscriber.intake import Message
from subscriber.processing import MessageProcessor
from subscriber_training import wine

FEATURES = wine.FEATURES
LIMITS = Limits(max_body_bytes=64 * 1024, max_records=50)

finite = st.floats(min_value=0, max_value=500, allow_nan=False, width=32)
record = st.fixed_dictionaries({name: finite for name in FEATURES})


def encode(records: Any, as_base64: bool) -> bytes:
    body = json.dumps(records)
    if as_base64:
        body = base64.b64encode(body.encode()).decode()
    return json.dumps({"body": body, "isBase64Encoded": as_base64}).encode()


valid = st.builds(
    lambda records, b64: ("valid", records, encode(records, b64)),
    st.lists(record, min_size=1, max_size=5),
    st.booleans(),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
broken_record = st.builds(lambda r, drop: {k: v for k, v in r.items() if k != drop}, record, st.sampled_from(FEATURES))
bad_value = st.builds(
    lambda r, key, value: {**r, key: value},
    record,
    st.sampled_from(FEATURES),
    st.text(max_size=5) | st.none() | st.booleans() | st.just(float("nan")),
)
malformed = st.one_of(
    st.binary(max_size=200),  # not JSON at all
    st.builds(lambda v: json.dumps(v).encode(), json_values),  # JSON, not an event
    st.builds(lambda t: json.dumps({"body": t}).encode(), st.text(max_size=50)),  # body not a JSON list
    st.builds(
        lambda t: json.dumps({"body": t, "isBase64Encoded": True}).encode(),
        st.text(alphabet="!@#$%^&*()", min_size=1, max_size=20),
    ),  # bad base64
    st.builds(lambda: encode([], False)),  # empty list
    st.builds(lambda rs: encode(rs, False), st.lists(broken_record, min_size=1, max_size=3)),  # missing feature
    st.builds(lambda rs: encode(rs, True), st.lists(bad_value, min_size=1, max_size=3)),  # non-numeric
    st.builds(lambda r: encode([r] * (LIMITS.max_records + 1), False), record),  # too many records
    st.just(b"[" * 70_000),  # oversized
).map(lambda payload: ("malformed", None, payload))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(valid, malformed), min_size=5, max_size=30))
def test_every_message_is_answered_once_and_valid_ones_correctly(
    reference_model: Model, stream: list[tuple[str, Any, bytes]]
) -> None:
    processor = MessageProcessor(reference_model, LIMITS)
    outcomes = [processor.process("local/topic", payload) for _, _, payload in stream]
    assert len(outcomes) == len(stream)
    for (kind, records, _), outcome in zip(stream, outcomes, strict=True):
        assert outcome.ok == (kind == "valid"), outcome.record
        if kind == "valid":
            assert outcome.record["records"] == len(records)
            assert outcome.record["predictions"] == reference_model.predict(records)
        else:
            assert outcome.record["error"] and outcome.record["message"]
            assert "\n" not in outcome.log_line()


def test_result_record_and_log_line(reference_model: Model, samples: list[Any]) -> None:
    outcome = MessageProcessor(reference_model, LIMITS).process("local/topic", encode(samples, False))
    assert outcome.ok
    assert outcome.log_line() == "result: [6.573914 4.869721]"
    assert outcome.record["topic"] == "local/topic"
    assert outcome.record["records"] == 2
    assert outcome.record["inference_ms"] > 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(valid, malformed), min_size=1, max_size=30))
def test_a_batch_is_answered_as_its_messages_would_be_one_by_one(
    reference_model: Model, stream: list[tuple[str, Any, bytes]]
) -> None:
    """One predict call for every valid message of a batch: each gets exactly the predictions it would alone, in
    its place, and a bad one costs the others nothing."""
    processor = MessageProcessor(reference_model, LIMITS)
    batch = processor.process_batch([Message(f"t/{i}", payload) for i, (_, _, payload) in enumerate(stream)])
    alone = [processor.process(f"t/{i}", payload) for i, (_, _, payload) in enumerate(stream)]

    def comparable(record: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in record.items() if key != "inference_ms"}

    assert [(o.ok, comparable(o.record)) for o in batch] == [(o.ok, comparable(o.record)) for o in alone]
