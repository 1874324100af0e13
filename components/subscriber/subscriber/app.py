"""The component's main loop: subscribe over Greengrass IPC, score what came, publish what came of it.

Configuration comes from the component's own configuration (GetConfiguration); the model from MODEL_PATH (the
model component's artifact, mounted), loaded once before subscribing, and its version from EDGEML_MODEL_VERSION.
The IPC client only queues each message (subscriber.intake: bounded, the oldest dropped and counted past it); one
scoring thread takes what queued meanwhile, in arrival order, scores it in one `predict` call and publishes the
results without waiting for each answer (subscriber.outbox). A challenger's shadow work waits on another thread
(subscriber.shadow.Backlog) and runs in its own process.

The SDK never reconnects: when the stream or the connection closes, the process exits non-zero and the
nucleus restarts the component (and marks it BROKEN after repeated failures), which is the Greengrass way.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import JsonMessage, PublishMessage, SubscriptionResponseMessage

from subscriber.challenger import ChallengerFailed, ChallengerProcess
from subscriber.inference import Limits, Model, ModelError, default_model
from subscriber.intake import Intake, Message
from subscriber.outbox import Outbox
from subscriber.processing import MessageProcessor, Outcome
from subscriber.profile import Profile, ProfileError
from subscriber.resultlog import ResultLog
from subscriber.shadow import Backlog, Shadow
from subscriber.shadow import log_line as shadow_log_line
from subscriber.telemetry import Identity, Recorder, ShadowCounts
from subscriber.uplink import Uplink

log = logging.getLogger("subscriber")
MODEL_VERSION_ENV = "EDGEML_MODEL_VERSION"
CHALLENGER_FILE_ENV = "EDGEML_CHALLENGER_FILE"
PROFILE_FILE_ENV = "EDGEML_PROFILE_FILE"
THING_NAME_ENV = "AWS_IOT_THING_NAME"


@dataclass(frozen=True)
class Bounds:
    """What the component holds and does at once, so that a flood costs dropped messages, counted, never memory."""

    messages: int = 1000  # waiting to be scored; past it (or `bytes`), the oldest are dropped
    bytes: int = 16 * 1024 * 1024
    batch: int = 64  # messages scored in one predict call, at most
    in_flight: int = 64  # results published and not yet answered by the core
    result_logs_per_second: float = 0  # 0: a `result:` line for every result, as the reference logged

    def __post_init__(self) -> None:
        counts = {
            "maxQueuedMessages": self.messages,
            "maxQueuedBytes": self.bytes,
            "maxBatchMessages": self.batch,
            "maxPublishesInFlight": self.in_flight,
        }
        wrong = [f"{key} is {value}" for key, value in counts.items() if value < 1]
        if self.result_logs_per_second < 0:
            wrong.append(f"maxResultLogsPerSecond is {self.result_logs_per_second}")
        if wrong:
            raise ValueError(f"configuration: {', '.join(wrong)}; each must be at least 1 (0 or more for the last)")


@dataclass(frozen=True)
class Telemetry:
    """Windows to AWS IoT Core on `<prefix>/<thing name>/telemetry` (subscriber.telemetry)."""

    prefix: str = "edgeml"  # empty: no telemetry
    seconds: float = 300
    messages: int = 0  # also cut a window once it counts this many messages (0: by time only)
    qos: str = "1"

    def __post_init__(self) -> None:
        if not self.seconds > 0 or self.messages < 0 or self.qos not in ("0", "1"):
            raise ValueError(
                f"configuration: telemetryWindowSeconds is {self.seconds} (above 0), telemetryWindowMessages is "
                f"{self.messages} (0 or more), telemetryQos is {self.qos!r} ('0' or '1')"
            )

    def topic(self, thing: str) -> str:
        return f"{self.prefix}/{thing}/telemetry"


@dataclass(frozen=True)
class Config:
    input_topic: str = "local/topic"
    result_topic: str = "edgeml/predictions"
    error_topic: str = "edgeml/errors"
    shadow_topic: str = "edgeml/shadow"
    iot_core_topic: str = ""  # empty: do not forward results to AWS IoT Core
    iot_core_qos: str = "0"
    limits: Limits = field(default_factory=Limits)
    queue: Bounds = field(default_factory=Bounds)
    telemetry: Telemetry = field(default_factory=Telemetry)

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
            queue=Bounds(
                int(values.get("maxQueuedMessages", default.queue.messages)),
                int(values.get("maxQueuedBytes", default.queue.bytes)),
                int(values.get("maxBatchMessages", default.queue.batch)),
                int(values.get("maxPublishesInFlight", default.queue.in_flight)),
                float(values.get("maxResultLogsPerSecond", default.queue.result_logs_per_second)),
            ),
            telemetry=Telemetry(
                str(values.get("telemetryTopicPrefix", default.telemetry.prefix)),
                float(values.get("telemetryWindowSeconds", default.telemetry.seconds)),
                int(values.get("telemetryWindowMessages", default.telemetry.messages)),
                str(values.get("telemetryQos", default.telemetry.qos)),
            ),
        )


class Subscriber:
    def __init__(
        self,
        ipc: GreengrassCoreIPCClientV2,
        config: Config,
        processor: MessageProcessor,
        shadow: Shadow | None = None,
        telemetry: tuple[Recorder, str] | None = None,
    ) -> None:
        """`telemetry`: the windows' recorder and the IoT Core topic they go to (None: no telemetry)."""
        self.ipc = ipc
        self.config = config
        self.processor = processor
        bounds = config.queue
        self.intake = Intake(bounds.messages, bounds.bytes, bounds.batch)
        self.outbox = Outbox(self._send, bounds.in_flight)
        self.cloud_outbox = Outbox(self._send_to_iot_core, bounds.in_flight)
        self.result_log = ResultLog(bounds.result_logs_per_second)
        self.reported_drops = 0
        # The challenger's work waits on a thread of its own: the champion's next message never waits for it.
        self.backlog = Backlog(shadow, self.report_shadow, batch=bounds.batch) if shadow is not None else None
        self.closed = threading.Event()
        self._scorer = threading.Thread(target=self._score, name="scoring", daemon=True)
        self.uplink: Uplink | None = None
        if telemetry is not None:
            recorder, topic = telemetry
            windows = config.telemetry
            self.uplink = Uplink(
                recorder,
                lambda payload: self._send_window(topic, payload),
                self._totals,
                windows.seconds,
                windows.messages,
            )

    def on_message(self, event: SubscriptionResponseMessage) -> None:
        """On the IPC client's thread: queued, never scored here, so the socket is read as fast as it fills."""
        if event.binary_message is not None:
            topic = event.binary_message.context.topic if event.binary_message.context else self.config.input_topic
            self.intake.put(Message(topic, bytes(event.binary_message.message or b"")))
        elif event.json_message is not None:
            topic = event.json_message.context.topic if event.json_message.context else self.config.input_topic
            self.intake.put(Message(topic, event.json_message.message or {}))

    def _score(self) -> None:
        while not (self.intake.closed and not len(self.intake)):
            # A second without messages still reports drops that came at the end of a flood.
            batch = self.intake.take(timeout=1.0)
            if batch:
                outcomes = self._scored(batch)
                done = time.monotonic()
                for outcome in outcomes:
                    self.report(outcome)
                if self.uplink is not None:
                    self.uplink.scored(batch, outcomes, done)
            self.report_drops()

    def _scored(self, batch: list[Message]) -> list[Outcome]:
        try:
            return self.processor.process_batch(batch)
        except Exception as exc:  # not the input's fault (libxgboost failed): still one answer each, and go on
            log.exception("scoring failed")
            reason = f"{type(exc).__name__}: {exc}"
            return [Outcome(False, {"topic": m.topic, "error": "scoring_failed", "message": reason}) for m in batch]

    def report(self, outcome: Outcome) -> None:
        # Published first, logged after: the line is for people, and writing it wakes the container's log chain
        # (shim, engine, the core's log) on the cores the answer is waiting for.
        target = self.config.result_topic if outcome.ok else self.config.error_topic
        self.outbox.publish(target, outcome.record)
        if outcome.ok:
            self.result_log.result(outcome)
        else:
            log.warning(outcome.log_line())
        if outcome.ok and self.config.iot_core_topic:
            self.cloud_outbox.publish(self.config.iot_core_topic, outcome.record)
        if outcome.ok and self.backlog is not None:  # only once the champion's result is out
            self.backlog.offer(outcome)

    def report_drops(self) -> None:
        """Messages dropped since the last report, on the error topic and in the log (`make status` reads it)."""
        dropped = self.intake.dropped
        if dropped == self.reported_drops:
            return
        bounds = self.config.queue
        record = {
            "topic": self.config.input_topic,
            "error": "overloaded",
            "message": f"{dropped - self.reported_drops} messages dropped unscored (the oldest waiting, past "
            f"{bounds.messages} messages or {bounds.bytes} bytes); {dropped} since the component started",
            "dropped": dropped,
        }
        self.reported_drops = dropped
        log.warning("overload: dropped=%d %s", dropped, record["message"])
        self.outbox.publish(self.config.error_topic, record)

    def _send(self, topic: str, record: dict[str, Any]) -> concurrent.futures.Future[Any]:
        message = PublishMessage(json_message=JsonMessage(message=record))
        sent: concurrent.futures.Future[Any] = self.ipc.publish_to_topic_async(topic=topic, publish_message=message)
        return sent

    def _send_to_iot_core(self, topic: str, record: dict[str, Any]) -> concurrent.futures.Future[Any]:
        payload = json.dumps(record).encode()
        sent: concurrent.futures.Future[Any] = self.ipc.publish_to_iot_core_async(
            topic_name=topic, qos=self.config.iot_core_qos, payload=payload
        )
        return sent

    def _send_window(self, topic: str, payload: bytes) -> concurrent.futures.Future[Any]:
        sent: concurrent.futures.Future[Any] = self.ipc.publish_to_iot_core_async(
            topic_name=topic, qos=self.config.telemetry.qos, payload=payload
        )
        return sent

    def _totals(self) -> tuple[int, ShadowCounts | None]:
        if self.backlog is None:
            return self.intake.dropped, None
        shadow = self.backlog.shadow
        agreement = shadow.agreement
        counts = ShadowCounts(
            agreement.count, agreement.total_abs_diff, agreement.total_sq_diff, shadow.failures, shadow.dropped
        )
        return self.intake.dropped, counts

    def report_shadow(self, shadow: Shadow, outcomes: list[Outcome]) -> None:
        scored = [(o.record["topic"], o.scored, o.record["predictions"]) for o in outcomes]
        records = shadow.score_batch(scored)
        for record in records:
            if "error" in record:
                log.warning(shadow_log_line(record))
            self.outbox.publish(self.config.shadow_topic, record)
        # The counts are running totals: one line a batch says what a line per message would have said by its last.
        if records and "error" not in records[-1]:
            log.info(shadow_log_line(records[-1]))

    def finish(self) -> None:
        """What still waits is not scored (the nucleus is stopping us, or the stream is gone); the batch being scored
        is counted, then the last telemetry window cut and handed to the core."""
        self.intake.close()
        if self.uplink is not None:
            self._scorer.join(timeout=10)
            self.uplink.stop()

    def on_error(self, error: Exception) -> bool:
        log.error("subscription error: %s: %s", type(error).__name__, error)
        return True

    def on_closed(self) -> None:
        self.closed.set()

    def run(self) -> None:
        self._scorer.start()
        if self.uplink is not None:
            self.uplink.start()
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


def telemetry_recorder(model: Model, config: Telemetry, version: str) -> tuple[Recorder, str] | None:
    """The windows' recorder and topic, or None when telemetry is off (no prefix, or no thing name to send under).
    A profile that cannot be used is said, and the windows go without a reference: the model serves regardless."""
    thing = os.environ.get(THING_NAME_ENV, "")
    if not config.prefix or not thing:
        log.info("telemetry off (%s)", "telemetryTopicPrefix is empty" if not config.prefix else f"no {THING_NAME_ENV}")
        return None
    profile = None
    name = os.environ.get(PROFILE_FILE_ENV, "")
    if name:
        try:
            profile = Profile.load(model.path.parent / name, model.features)
        except ProfileError as exc:
            log.error("telemetry without a reference: %s", exc)
    challenger = os.environ.get(CHALLENGER_FILE_ENV, "")
    identity = Identity(
        thing,
        hashlib.sha256(model.path.read_bytes()).hexdigest(),
        _sha256(model.path.parent / challenger) if challenger else None,
        version,
        time.time(),
    )
    topic = config.topic(thing)
    reference = f"reference {profile.sha256[:12]}" if profile else "no reference"
    log.info("telemetry: a window every %gs to %s (%s)", config.seconds, topic, reference)
    return Recorder(identity, profile), topic


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


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
    # No executor: a message is queued on the client's own thread (Subscriber.on_message), one hand-off fewer.
    ipc = GreengrassCoreIPCClientV2(executor=None)
    try:
        config = Config.from_component(ipc.get_configuration(key_path=[]).value or {})
    except (ValueError, TypeError) as exc:  # a value that is no number, or out of its bounds: said, not a traceback
        log.error("the component's configuration is refused: %s", exc)
        ipc.close()
        return 2
    version = os.environ.get(MODEL_VERSION_ENV, "")
    shadow = challenger_shadow(model, version)
    telemetry = telemetry_recorder(model, config.telemetry, version)
    subscriber = Subscriber(ipc, config, MessageProcessor(model, config.limits, version), shadow, telemetry)
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stopping.set()
        subscriber.closed.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    subscriber.run()
    subscriber.closed.wait()
    subscriber.finish()
    ipc.close()
    if stopping.is_set():
        return 0
    log.error("the IPC stream closed; exiting so that the nucleus restarts the component")
    return 1
