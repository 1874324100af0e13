"""The subscriber's intake (what waits to be scored), outbox (results not yet answered by the core) and result log:
batches of what queued meanwhile, in order, within their bounds, every message either scored or counted as dropped,
and the log's cost bounded when asked."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import pytest
from subscriber.app import Config
from subscriber.intake import Intake, Message
from subscriber.outbox import Outbox
from subscriber.processing import Outcome
from subscriber.resultlog import ResultLog


def messages(count: int, size: int = 10, start: int = 0) -> list[Message]:
    return [Message("local/topic", str(start + i).encode().ljust(size)) for i in range(count)]


@pytest.mark.parametrize(("queued", "taken"), [(1, [1]), (8, [8]), (9, [8, 1]), (20, [8, 8, 4])])
def test_a_batch_is_what_queued_up_to_its_bound_oldest_first(queued: int, taken: list[int]) -> None:
    """1, the bound, the bound + 1: each take returns at once with what is there, never waiting to fill a batch."""
    intake = Intake(max_messages=100, max_bytes=10_000, max_batch=8)
    sent = messages(queued)
    for message in sent:
        intake.put(message)
    batches = [intake.take(timeout=0) for _ in taken]
    assert [len(batch) for batch in batches] == taken
    assert [m for batch in batches for m in batch] == sent  # arrival order, nothing twice
    assert intake.take(timeout=0) == [] and intake.dropped == 0


@pytest.mark.parametrize(
    ("bounds", "kept"),
    [
        ({"max_messages": 5, "max_bytes": 10_000}, 5),  # by count
        ({"max_messages": 100, "max_bytes": 35}, 3),  # by bytes: three 10-byte messages fit in 35
    ],
)
def test_past_a_bound_the_oldest_are_dropped_and_counted(bounds: dict[str, int], kept: int) -> None:
    intake = Intake(**bounds, max_batch=100)
    sent = messages(12)
    for message in sent:
        intake.put(message)
    assert intake.take(timeout=0) == sent[-kept:]  # the freshest stay
    assert intake.dropped == 12 - kept  # scored + dropped == sent: none lost without a count


def test_a_message_larger_than_the_byte_bound_is_still_scored_alone() -> None:
    """The byte bound pushes out older messages, never the one that just came (its own size is maxMessageBytes')."""
    intake = Intake(max_messages=10, max_bytes=15, max_batch=10)
    (small,) = messages(1)
    (big,) = messages(1, size=50, start=1)
    intake.put(small)
    intake.put(big)
    assert intake.take(timeout=0) == [big] and intake.dropped == 1


def test_take_waits_for_a_message_and_close_ends_the_wait() -> None:
    intake = Intake(max_messages=10, max_bytes=1000, max_batch=10)
    got: list[list[Message]] = []
    taker = threading.Thread(target=lambda: got.append(intake.take(timeout=30)))
    taker.start()
    (message,) = messages(1)
    intake.put(message)
    taker.join(10)
    assert got == [[message]]
    closer = threading.Thread(target=lambda: got.append(intake.take(timeout=30)))
    closer.start()
    intake.close()
    closer.join(10)
    assert not closer.is_alive() and got[-1] == [] and intake.closed


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Intake(max_messages=0, max_bytes=10, max_batch=1)


class Core:
    """Stands in for the IPC client's publish_to_topic_async (the real one is exercised in test_ipc_loop): futures
    this test answers when it chooses, so what is in flight is known."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], concurrent.futures.Future[Any]]] = []

    def __call__(self, topic: str, record: dict[str, Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.sent.append((topic, record, future))
        return future


def test_the_outbox_writes_in_order_without_waiting_up_to_its_bound_and_counts_refusals() -> None:
    core = Core()
    outbox = Outbox(core, max_in_flight=3)
    for n in range(3):
        outbox.publish("edgeml/predictions", {"n": n})  # none answered yet: none waits
    fourth = threading.Thread(target=outbox.publish, args=("edgeml/predictions", {"n": 3}))
    fourth.start()
    fourth.join(0.5)
    assert fourth.is_alive() and len(core.sent) == 3  # the fourth waits for an answer
    core.sent[0][2].set_exception(RuntimeError("UnauthorizedError"))  # a refusal frees its slot too
    fourth.join(10)
    assert not fourth.is_alive()
    assert [record["n"] for _, record, _ in core.sent] == [0, 1, 2, 3]
    for _, _, future in core.sent[1:]:
        future.set_result(None)
    assert outbox.refused == 1


def test_a_publish_that_cannot_be_written_is_counted_and_frees_its_slot() -> None:
    def closed(topic: str, record: dict[str, Any]) -> concurrent.futures.Future[Any]:
        raise RuntimeError("the connection is closed")

    outbox = Outbox(closed, max_in_flight=1)
    outbox.publish("edgeml/predictions", {})
    outbox.publish("edgeml/predictions", {})  # would wait forever had the first kept its slot
    assert outbox.refused == 2


def test_result_lines_every_one_by_default_and_at_most_n_a_second_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    outcome = Outcome(True, {"topic": "local/topic", "predictions": [6.573914, 4.869721]})
    caplog.set_level("INFO", logger="subscriber")
    every = ResultLog()
    for _ in range(5):
        every.result(outcome)
    assert caplog.messages == ["result: [6.573914 4.869721]"] * 5
    caplog.clear()
    now = [100.0]
    sampled = ResultLog(per_second=2, clock=lambda: now[0])
    for _ in range(5):  # two written, three counted
        sampled.result(outcome)
    now[0] += 1.0
    sampled.result(outcome)
    assert caplog.messages == ["result: [6.573914 4.869721]"] * 2 + [
        "result: [6.573914 4.869721] (3 results not logged before it)"
    ]


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"maxQueuedMessages": 0}, "maxQueuedMessages is 0"),
        ({"maxBatchMessages": -1, "maxPublishesInFlight": 0}, "maxBatchMessages is -1, maxPublishesInFlight is 0"),
        ({"maxResultLogsPerSecond": -2}, "maxResultLogsPerSecond is -2.0"),
    ],
)
def test_bounds_out_of_range_are_refused_naming_the_keys(values: dict[str, Any], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        Config.from_component(values)
    with pytest.raises(ValueError):  # not a number at all
        Config.from_component({"maxQueuedBytes": "lots"})
