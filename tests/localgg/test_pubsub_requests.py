"""PublishToTopic's request checks, at the services layer (a recording peer; the SDK-level tests cover the wire):
a binary message must be strict base64 and is passed on as it came."""

from __future__ import annotations

import base64
import binascii
import json

from hypothesis import given
from hypothesis import strategies as st

from localgg.authorization import Authorizer
from localgg.config import ConfigStore
from localgg.ipc import NS, IpcServices
from localgg.shapes import is_base64

ACL = {"aws.greengrass.ipc.pubsub": {"p:1": {"operations": ["*"], "resources": ["*"]}}}


class RecordingPeer:
    def __init__(self, component: str) -> None:
        self.component = component
        self.sent: list[tuple[int, str | None, bytes]] = []

    def send(self, stream_id: int, model_type: str, payload: bytes, terminate: bool) -> None:
        self.sent.append((stream_id, model_type, payload))

    def send_error(self, stream_id: int, model_type: str | None, payload: bytes, content_type: str) -> None:
        self.sent.append((stream_id, model_type, payload))


def strictly_decodes(text: str) -> bool:
    """RFC 4648 base64 as Java's decoder (the nucleus's) takes it. Python's strict mode alone is more lenient: it
    takes a stray `=` after a whole quantum (`00000000=`), which is not base64 (section 3.2: the encoded text is
    a whole number of 4-character quanta)."""
    if len(text) % 4:
        return False
    try:
        binascii.a2b_base64(text, strict_mode=True)
        return True
    except (binascii.Error, ValueError):
        return False


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n.é", max_size=24))
def test_the_base64_check_agrees_with_strict_decoding(text: str) -> None:
    assert is_base64(text) == strictly_decodes(text)


@given(st.binary(max_size=64))
def test_every_encoding_passes(data: bytes) -> None:
    assert is_base64(base64.b64encode(data).decode())


def services() -> tuple[IpcServices, RecordingPeer, RecordingPeer]:
    auth = Authorizer()
    for component in ("Pub", "Sub"):
        auth.load(component, ACL)
    ipc = IpcServices(ConfigStore(), auth)
    publisher, subscriber = RecordingPeer("Pub"), RecordingPeer("Sub")
    ipc.call(subscriber, 1, NS + "SubscribeToTopic", json.dumps({"topic": "t"}).encode())
    return ipc, publisher, subscriber


def publish(ipc: IpcServices, peer: RecordingPeer, message: str) -> None:
    request = {"topic": "t", "publishMessage": {"binaryMessage": {"message": message}}}
    ipc.call(peer, 1, NS + "PublishToTopic", json.dumps(request).encode())


def test_a_binary_message_is_passed_on_as_it_came() -> None:
    ipc, publisher, subscriber = services()
    publish(ipc, publisher, "aGVsbG8=")
    assert publisher.sent == [(1, NS + "PublishToTopicResponse", b"{}")]
    event = json.loads(subscriber.sent[-1][2])
    assert event == {"binaryMessage": {"message": "aGVsbG8=", "context": {"topic": "t"}}}


def test_a_binary_message_that_is_not_base64_is_refused_and_not_delivered() -> None:
    ipc, publisher, subscriber = services()
    before = list(subscriber.sent)
    publish(ipc, publisher, "aGVsbG8")  # padding missing
    assert publisher.sent == [(1, None, b"InternalServerError")]
    assert subscriber.sent == before
