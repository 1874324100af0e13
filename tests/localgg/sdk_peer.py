"""A real-SDK component process for the tests: `publish TOPIC MESSAGE...` or `subscribe TOPIC COUNT`.

It reads SVCUID and the socket path from the environment, as every component does; `subscribe` prints
`READY` once subscribed, then one JSON line per message.
"""

from __future__ import annotations

import json
import sys
import threading

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage, SubscriptionResponseMessage


def main() -> int:
    mode, topic, *rest = sys.argv[1:]
    ipc = GreengrassCoreIPCClientV2()
    if mode == "publish":
        for message in rest:
            ipc.publish_to_topic(
                topic=topic, publish_message=PublishMessage(binary_message=BinaryMessage(message=message.encode()))
            )
        return 0
    wanted, seen, done = int(rest[0]), [], threading.Event()

    def on_event(event: SubscriptionResponseMessage) -> None:
        message = event.binary_message
        print(json.dumps({"topic": message.context.topic, "message": bytes(message.message).decode()}), flush=True)
        seen.append(1)
        if len(seen) >= wanted:
            done.set()

    ipc.subscribe_to_topic(topic=topic, on_stream_event=on_event)
    print("READY", flush=True)
    return 0 if done.wait(30) else 1


if __name__ == "__main__":
    sys.exit(main())
