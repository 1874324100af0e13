"""A benchmark component (real SDK), started by localgg: `publish` or `subscribe`, results to a JSON file.

Payloads start with the sender's CLOCK_MONOTONIC in nanoseconds (system-wide on Linux), so the subscriber
measures publish-to-delivery latency across processes.
"""

from __future__ import annotations

import argparse
import collections
import json
import struct
import threading
import time
from pathlib import Path

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage, SubscriptionResponseMessage

TOPIC = "bench/data"
_STAMP = struct.Struct(">q")


def subscribe(count: int, out: Path, ready: Path) -> None:
    latencies: list[int] = []
    done = threading.Event()

    def on_event(event: SubscriptionResponseMessage) -> None:
        (sent,) = _STAMP.unpack_from(event.binary_message.message)
        latencies.append(time.monotonic_ns() - sent)
        if len(latencies) >= count:
            done.set()

    ipc = GreengrassCoreIPCClientV2()
    ipc.subscribe_to_topic(topic=TOPIC, on_stream_event=on_event)
    cpu = time.process_time()
    ready.write_text("ready")
    done.wait(600)
    out.write_text(
        json.dumps(
            {
                "received": len(latencies),
                "latencies_ns": latencies,
                "end_ns": time.monotonic_ns(),
                "cpu_s": time.process_time() - cpu,
            }
        )
    )


def publish(count: int, size: int, inflight: int, out: Path, ready: Path) -> None:
    while not ready.exists():
        time.sleep(0.01)
    ipc = GreengrassCoreIPCClientV2()
    padding = b"x" * max(0, size - _STAMP.size)
    pending: collections.deque[object] = collections.deque()
    cpu = time.process_time()
    start = time.monotonic_ns()
    for _ in range(count):
        message = PublishMessage(binary_message=BinaryMessage(message=_STAMP.pack(time.monotonic_ns()) + padding))
        if inflight <= 1:
            ipc.publish_to_topic(topic=TOPIC, publish_message=message)
            continue
        pending.append(ipc.publish_to_topic_async(topic=TOPIC, publish_message=message))
        if len(pending) >= inflight:
            pending.popleft().result()  # type: ignore[attr-defined]
    while pending:
        pending.popleft().result()  # type: ignore[attr-defined]
    out.write_text(json.dumps({"start_ns": start, "end_ns": time.monotonic_ns(), "cpu_s": time.process_time() - cpu}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["publish", "subscribe"])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args()
    if args.mode == "subscribe":
        subscribe(args.count, args.out, args.ready)
    else:
        publish(args.count, args.size, args.inflight, args.out, args.ready)


if __name__ == "__main__":
    main()
