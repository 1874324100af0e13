"""The two ends of the end-to-end benchmark (real SDK), started by localgg as components: `publish` sends the
reference message (the publisher's records as a JSON event) to the subscriber's input topic, `read` takes the
subscriber's results. Each writes its CLOCK_MONOTONIC times (system-wide on Linux, so comparable across
processes and containers) to a JSON file.

The subscriber answers messages one at a time in arrival order, so the i-th result answers the i-th message.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage, SubscriptionResponseMessage

INPUT, RESULTS = "local/topic", "edgeml/predictions"


def read(count: int, out: Path, ready: Path) -> None:
    received: list[int] = []
    done = threading.Event()

    def on_event(event: SubscriptionResponseMessage) -> None:
        received.append(time.monotonic_ns())
        if len(received) >= count:
            done.set()

    ipc = GreengrassCoreIPCClientV2()
    ipc.subscribe_to_topic(topic=RESULTS, on_stream_event=on_event)
    ready.write_text("ready")
    done.wait(600)
    out.write_text(json.dumps({"received_ns": received}))


def publish(count: int, rate: float, records: Path, out: Path, ready: Path, go: Path) -> None:
    """`count` messages, `rate` a second (0: as fast as the core takes them, one at a time)."""
    body = json.dumps({"body": records.read_text(), "isBase64Encoded": False}).encode()
    while not (ready.exists() and go.exists()):
        time.sleep(0.01)
    ipc = GreengrassCoreIPCClientV2()
    sent: list[int] = []
    start = time.monotonic_ns()
    for index in range(count):
        if rate > 0:
            due = start + int(index * 1e9 / rate)
            while time.monotonic_ns() < due:
                time.sleep(max(0.0, (due - time.monotonic_ns()) / 1e9 - 0.0002))
        sent.append(time.monotonic_ns())
        ipc.publish_to_topic(topic=INPUT, publish_message=PublishMessage(binary_message=BinaryMessage(message=body)))
    out.write_text(json.dumps({"sent_ns": sent}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["publish", "read"])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--records", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--go", type=Path)
    args = parser.parse_args()
    if args.mode == "read":
        read(args.count, args.out, args.ready)
    else:
        publish(args.count, args.rate, args.records, args.out, args.ready, args.go)


if __name__ == "__main__":
    main()
