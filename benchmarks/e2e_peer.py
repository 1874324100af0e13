"""The two ends of the end-to-end benchmark (real SDK), started by localgg as components: `publish` sends the
reference message (the publisher's records as a JSON event) to the subscriber's input topic, `read` takes the
subscriber's results and its overload reports. Each writes its CLOCK_MONOTONIC times (system-wide on Linux, so
comparable across processes and containers) to a JSON file.

The subscriber answers messages in arrival order, so while it drops none the i-th result answers the i-th message.
The reader is done once every message is answered or counted as dropped (the `dropped` of the subscriber's last
"overloaded" record on its error topic), or after `--timeout` seconds.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage, SubscriptionResponseMessage

INPUT, RESULTS, ERRORS = "local/topic", "edgeml/predictions", "edgeml/errors"


def read(count: int, out: Path, ready: Path, timeout: float) -> None:
    received: list[int] = []
    dropped = [0]
    done = threading.Event()

    def settled() -> None:
        if len(received) + dropped[0] >= count:
            done.set()

    def on_result(event: SubscriptionResponseMessage) -> None:
        received.append(time.monotonic_ns())
        settled()

    def on_error(event: SubscriptionResponseMessage) -> None:
        record = event.json_message.message if event.json_message else {}
        if record.get("error") == "overloaded":
            dropped[0] = max(dropped[0], int(record["dropped"]))
            settled()

    ipc = GreengrassCoreIPCClientV2(executor=None)  # the times are taken on the client's own thread
    ipc.subscribe_to_topic(topic=RESULTS, on_stream_event=on_result)
    ipc.subscribe_to_topic(topic=ERRORS, on_stream_event=on_error)
    ready.write_text("ready")
    done.wait(timeout)
    out.write_text(json.dumps({"received_ns": received, "dropped": dropped[0]}))


def publish(
    count: int, rate: float, inflight: int, records: Path, out: Path, ready: Path, go: Path, topic: str = INPUT
) -> None:
    """`count` messages to `topic`, `rate` a second (0: as fast as the core takes them), at most `inflight`
    unanswered."""
    body = json.dumps({"body": records.read_text(), "isBase64Encoded": False}).encode()
    while not (ready.exists() and go.exists()):
        time.sleep(0.01)
    ipc = GreengrassCoreIPCClientV2()
    slots = threading.BoundedSemaphore(inflight)
    message = PublishMessage(binary_message=BinaryMessage(message=body))
    sent: list[int] = []
    start = time.monotonic_ns()
    for index in range(count):
        if rate > 0:
            due = start + int(index * 1e9 / rate)
            while time.monotonic_ns() < due:
                time.sleep(max(0.0, (due - time.monotonic_ns()) / 1e9 - 0.0002))
        slots.acquire()
        sent.append(time.monotonic_ns())
        ipc.publish_to_topic_async(topic=topic, publish_message=message).add_done_callback(lambda _: slots.release())
    for _ in range(inflight):  # every publish answered
        slots.acquire()
    out.write_text(json.dumps({"sent_ns": sent}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["publish", "read"])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--inflight", type=int, default=1, help="publishes unanswered at most (1: synchronous)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--records", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--go", type=Path)
    parser.add_argument("--topic", default=INPUT, help=f"where to publish (default {INPUT}; {RESULTS}: to the reader)")
    args = parser.parse_args()
    if args.mode == "read":
        read(args.count, args.out, args.ready, args.timeout)
    else:
        publish(args.count, args.rate, args.inflight, args.records, args.out, args.ready, args.go, args.topic)


if __name__ == "__main__":
    main()
