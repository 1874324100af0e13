"""The component's main loop: subscribe over Greengrass IPC, score each message, publish what came of it.

Configuration comes from the component's own configuration (GetConfiguration); the model from MODEL_PATH (the
model component's artifact, mounted), loaded once before subscribing, and its version from EDGEML_MODEL_VERSION.
Messages are handled one at a time, in arrival order, on one worker thread
(the SDK's default executor has several workers and could reorder them); a challenger's shadow work on another
(subscriber.shadow.Backlog), in its own process.

The SDK never reconnects: when the stream or the connection closes, the process exits non-zero and the
nucleus restarts the component (and marks it BROKEN after repeated failures), which is the Greengrass way.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import JsonMessage, PublishMessage, SubscriptionResponseMessage

from subscriber.challenger import ChallengerFailed, ChallengerProcess
from subscriber.inference import Limits, Model, ModelError, default_model
from subscriber.processing import MessageProcessor, Outcome
from subscriber.shadow import Backlog, Shadow
from subscriber.shadow import log_line as shadow_log_line

log = logging.getLogger("subscriber")
MODEL_VERSION_ENV = "EDGEML_MODEL_VERSION"
CHALLENGER_FILE_ENV = "EDGEML_CHALLENGER_FILE"


@dataclass(frozen=True)
class Config:
    input_topic: str = "local/topic"
    result_topic: str = "edgeml/predictions"
    error_topic: str = "edgeml/errors"
    shadow_topic: str = "edgeml/shadow"
    iot_core_topic: str = ""  # empty: do not forward results to AWS IoT Core
    iot_core_qos: str = "0"
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_component(cls, values: dict[str, Any]) -> Config:
        default = cls()
        return cls(
            input_topic=str(values.get("inputTopic", default.input_topic)),
            result_topic=str(values.get("resultTopic", default.result_topic)),
            error_topic=str(values.get("errorTopic", default.error_topic)),
            shadow_topic=str(values.get("shadowTopic", default.shadow_topic)),
            iot_core_topic=str(values.get("iotCoreTopic", default.iot_core_topic)),
            iot_core_qos=str(values.get("iotCoreQos", default.iot_core_qos)),
            limits=Limits(
                int(values.get("maxMessageBytes", default.limits.max_body_bytes)),
                int(values.get("maxRecords", default.limits.max_records)),
            ),
        )


class Subscriber:
    def __init__(
        self,
        ipc: GreengrassCoreIPCClientV2,
        config: Config,
        processor: MessageProcessor,
        shadow: Shadow | None = None,
    ) -> None:
        self.ipc = ipc
        self.config = config
        self.processor = processor
        # The challenger's work waits on a thread of its own: the champion's next message never waits for it.
        self.backlog = Backlog(shadow, self.report_shadow) if shadow is not None else None
        self.closed = threading.Event()

    def on_message(self, event: SubscriptionResponseMessage) -> None:
        if event.binary_message is not None:
            topic = event.binary_message.context.topic if event.binary_message.context else self.config.input_topic
            outcome = self.processor.process(topic, bytes(event.binary_message.message or b""))
        elif event.json_message is not None:
            topic = event.json_message.context.topic if event.json_message.context else self.config.input_topic
            outcome = self.processor.process(topic, event.json_message.message or {})
        else:
            return
        self.report(outcome)

    def report(self, outcome: Outcome) -> None:
        if outcome.ok:
            log.info(outcome.log_line())
        else:
            log.warning(outcome.log_line())
        target = self.config.result_topic if outcome.ok else self.config.error_topic
        try:
            self.ipc.publish_to_topic(
                topic=target, publish_message=PublishMessage(json_message=JsonMessage(message=outcome.record))
            )
            if outcome.ok and self.config.iot_core_topic:
                self.ipc.publish_to_iot_core(
                    topic_name=self.config.iot_core_topic,
                    qos=self.config.iot_core_qos,
                    payload=json.dumps(outcome.record).encode(),
                )
        except Exception as exc:  # a refused publish must not stop the loop; the next message may go through
            log.error("could not publish to %s: %s: %s", target, type(exc).__name__, exc)
        if outcome.ok and self.backlog is not None:  # only once the champion's result is out
            self.backlog.offer(outcome)

    def report_shadow(self, shadow: Shadow, outcome: Outcome) -> None:
        try:
            record = shadow.score(outcome.record["topic"], outcome.scored, outcome.record["predictions"])
            (log.warning if "error" in record else log.info)(shadow_log_line(record))
            self.ipc.publish_to_topic(
                topic=self.config.shadow_topic, publish_message=PublishMessage(json_message=JsonMessage(message=record))
            )
        except Exception as exc:  # the challenger never costs the champion its results
            log.error("shadow scoring failed: %s: %s", type(exc).__name__, exc)

    def on_error(self, error: Exception) -> bool:
        log.error("subscription error: %s: %s", type(error).__name__, error)
        return True

    def on_closed(self) -> None:
        self.closed.set()

    def run(self) -> None:
        self.ipc.subscribe_to_topic(
            topic=self.config.input_topic,
            on_stream_event=self.on_message,
            on_stream_error=self.on_error,
            on_stream_closed=self.on_closed,
        )
        log.info(
            "subscribed to %s; results to %s, errors to %s",
            self.config.input_topic,
            self.config.result_topic,
            self.config.error_topic,
        )


def challenger_shadow(champion: Model, version: str) -> Shadow | None:
    """The challenger beside the champion's file (EDGEML_CHALLENGER_FILE), if one is named; one that cannot be
    loaded is logged and left out, and the champion serves on alone."""
    name = os.environ.get(CHALLENGER_FILE_ENV, "")
    if not name:
        return None
    challenger = ChallengerProcess(champion.path.parent / name)
    try:
        challenger.start()
    except ChallengerFailed as exc:
        log.error("challenger left out: %s", exc)
        return None
    log.info("challenger %s scored in the shadow of %s, in a process of its own", challenger.path, champion.path)
    return Shadow(challenger, version)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    try:
        model = default_model()
    except ModelError as exc:
        log.error("%s", exc)
        return 2
    log.info(
        "model %s (version %s): %d features", model.path, os.environ.get(MODEL_VERSION_ENV) or "?", len(model.features)
    )
    worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="messages")
    ipc = GreengrassCoreIPCClientV2(executor=worker)
    config = Config.from_component(ipc.get_configuration(key_path=[]).value or {})
    version = os.environ.get(MODEL_VERSION_ENV, "")
    shadow = challenger_shadow(model, version)
    subscriber = Subscriber(ipc, config, MessageProcessor(model, config.limits, version), shadow)
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stopping.set()
        subscriber.closed.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    subscriber.run()
    subscriber.closed.wait()
    ipc.close()
    if stopping.is_set():
        return 0
    log.error("the IPC stream closed; exiting so that the nucleus restarts the component")
    return 1
