"""Every request the SDK can send, and every wrong type in any of its fields, at the services layer: the core answers
each one once, with a result or the nucleus's error for it, and never raises.

The nucleus deserializes a request with Gson into its operation's request class (EventStreamRPCServiceModel.fromJson);
one that does not fit is a DeserializationException, answered by OperationContinuationHandler.handleAndSendError with
the unmodeled `InternalServerError` (text/plain, no service-model-type): ../shared/docs/greengrass-ipc.md section 7.2.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localgg import shapes
from localgg.authorization import Authorizer
from localgg.config import ConfigStore
from localgg.ipc import NS, IpcServices
from tests.support.fuzzing import examples

ACL = {
    "aws.greengrass.ipc.pubsub": {"p:1": {"operations": ["*"], "resources": ["*"]}},
    "aws.greengrass.ipc.mqttproxy": {"m:1": {"operations": ["*"], "resources": ["*"]}},
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


class Peer:
    def __init__(self) -> None:
        self.component = "Fuzzed"
        self.answers: list[tuple[int, str | None, bytes]] = []

    def send(self, stream_id: int, model_type: str, payload: bytes, terminate: bool) -> None:
        self.answers.append((stream_id, model_type, payload))

    def send_error(self, stream_id: int, model_type: str | None, payload: bytes, content_type: str) -> None:
        self.answers.append((stream_id, model_type, payload))


class _Raised(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def raised() -> Iterator[_Raised]:
    handler = _Raised()
    logging.getLogger("localgg").addHandler(handler)
    yield handler
    logging.getLogger("localgg").removeHandler(handler)


def services() -> IpcServices:
    authorizer = Authorizer()
    authorizer.load("Fuzzed", ACL)
    config = ConfigStore()
    config.set_component("Fuzzed", {"a": {"b": 1}, "accessControl": ACL})
    return IpcServices(config, authorizer)


def answered_once(request: bytes, operation: str, raised: _Raised) -> tuple[str | None, bytes]:
    peer = Peer()
    before = len(raised.records)
    services().call(peer, 1, NS + operation, request)
    assert raised.records[before:] == [], f"{operation} raised on {request!r}"
    answers = [answer for answer in peer.answers if answer[0] == 1]
    assert len(answers) == 1, f"{operation} answered {len(answers)} times on {request!r}: {answers}"
    ((_, model_type, payload),) = answers
    return model_type, payload


@settings(max_examples=examples(400))
@given(st.sampled_from(sorted(shapes.REQUESTS)), JSON)
def test_any_json_is_answered_never_raised(raised: _Raised, operation: str, document: Any) -> None:
    answered_once(json.dumps(document).encode(), operation, raised)


def _fields(structure: shapes.Structure, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, reader in structure.fields.items():
        yield (*prefix, name)
        if isinstance(reader, shapes.Structure):
            yield from _fields(reader, (*prefix, name))


FIELDS = [(operation, path) for operation, shape in sorted(shapes.REQUESTS.items()) for path in _fields(shape)]


def _placed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    document: Any = value
    for name in reversed(path):
        document = {name: document}
    return dict(document)


@settings(max_examples=examples(600))
@given(st.sampled_from(FIELDS), JSON)
def test_any_value_in_any_field_is_answered_never_raised(
    raised: _Raised, field: tuple[str, tuple[str, ...]], value: Any
) -> None:
    operation, path = field
    answered_once(json.dumps(_placed(path, value)).encode(), operation, raised)


def test_regression_a_publish_message_that_is_a_number_is_the_nucleus_deserialization_error(raised: _Raised) -> None:
    """Found by the fuzzer: `publishMessage: 1` raised AttributeError inside PublishToTopic. Gson cannot read a
    number into PublishMessage, so the nucleus answers InternalServerError
    (OperationContinuationHandler.handleAndSendError)."""
    request = json.dumps({"topic": "fuzz/a", "publishMessage": 1}).encode()
    assert answered_once(request, "PublishToTopic", raised) == (None, b"InternalServerError")


@pytest.mark.parametrize("operation", ["PublishToTopic", "SubscribeToTopic"])
def test_regression_an_empty_topic_is_the_nucleus_unauthorized_error(raised: _Raised, operation: str) -> None:
    """Found by `make fuzz` (7 seeds of 20, hypothesis' `@reproduce_failure('6.170.17', b'AEEPQQBBBIA=')`):
    `{"topic": ""}` made PublishToTopic raise. The nucleus's AuthorizationHandler.isAuthorized throws
    AuthorizationException("Resource cannot be empty") before any other check, and the pub/sub agent answers it as
    UnauthorizedError with that message, for publish and subscribe alike."""
    model_type, payload = answered_once(json.dumps({"topic": ""}).encode(), operation, raised)
    assert model_type == NS + "UnauthorizedError"
    assert json.loads(payload)["message"] == "Resource cannot be empty"


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        # Gson reads a number into a String field as its text: the topic is "5".
        ({"topic": 5, "publishMessage": {"jsonMessage": {"message": {}}}}, (NS + "PublishToTopicResponse", b"{}")),
        ({"topic": {"a": 1}, "publishMessage": {"jsonMessage": {"message": {}}}}, (None, b"InternalServerError")),
        ({"topic": "t", "publishMessage": {"jsonMessage": {"message": []}}}, (None, b"InternalServerError")),
        (
            {"topic": "t", "publishMessage": {"jsonMessage": {"message": {}}, "binaryMessage": {"message": ""}}},
            (None, b"InternalServerError"),
        ),
        (None, (None, b"InternalServerError")),
    ],
)
def test_gson_s_reading_decides_the_answer(raised: _Raised, request_body: Any, expected: tuple[Any, bytes]) -> None:
    assert answered_once(json.dumps(request_body).encode(), "PublishToTopic", raised) == expected


def test_a_long_field_takes_what_json_reader_next_long_takes() -> None:
    """JsonReader.nextLong: a number or numeric string without a fraction, within 64 bits."""
    assert shapes.long(5, "f") == 5 and shapes.long("7", "f") == 7 and shapes.long(2.0, "f") == 2
    wrong: object
    for wrong in (1.5, "x", True, [], 2**63):
        with pytest.raises(shapes.Malformed):
            shapes.long(wrong, "f")
