"""Telemetry windows: the reference profile, the counting, the encoding, and the windows reaching an MQTT broker that
stands in for AWS IoT Core through the core's PublishToIoTCore (the unmodified component, as a process of localgg)."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import xgboost as xgb
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage
from paho.mqtt.enums import CallbackAPIVersion
from subscriber.inference import Limits, Model
from subscriber.intake import Message
from subscriber.processing import MessageProcessor
from subscriber.profile import Profile, ProfileError, bin_of
from subscriber.telemetry import LATENCY_BUCKETS, Identity, Recorder, ShadowCounts, encode, latency_bucket
from subscriber_training import profile as profiling
from subscriber_training import wine

from localcloud import moto_aws
from localgg.mqtt import MqttBridge
from scripts.monitoring import drift, monitor
from tests.localgg.harness import CoreThread
from tests.subscriber.test_ipc_loop import NAME, deploy_subscriber
from tests.support.eventually import eventually
from tests.support.models import small_model
from tests.support.outputs import stack_outputs


@pytest.fixture(scope="module")
def modelled(tmp_path_factory: pytest.TempPathFactory, seed: Path) -> tuple[Path, Path]:
    """A small model of the seed data and its profile, made as `make model` makes one (on all the rows here)."""
    folder = tmp_path_factory.mktemp("telemetry-model")
    model = small_model(folder, seed)
    booster = xgb.Booster(model_file=str(model))
    rows = wine.load_csv(seed / "wine_concat.csv").features
    made = profiling.make(booster, rows, "m" * 64, "d" * 64)
    profiling.write(made, folder / "profile.json")
    return model, folder / "profile.json"


def identity(challenger: str | None = None) -> Identity:
    return Identity("pi-1", "c" * 64, challenger, "1.0.3", 1_765_000_000.0)


def messages_of(samples: list[Any], count: int) -> list[Message]:
    body = json.dumps({"body": json.dumps(samples)}).encode()
    return [Message("local/topic", body) for _ in range(count)]


def test_the_profile_bins_every_training_row_inside_and_its_shares_sum_to_one(modelled: tuple[Path, Path]) -> None:
    model, path = modelled
    document = json.loads(path.read_text())
    profile = Profile.load(path, Model(model).features)
    assert list(profile.features) == wine.FEATURES
    for name, spec in document["features"].items():
        shares = spec["shares"]
        assert shares[0] == 0 and shares[-1] == 0  # no training row under- or overflows
        assert sum(shares) == pytest.approx(1, abs=1e-5)
        assert len(spec["edges"]) <= 11, name  # the minimum, nine deciles, just above the maximum
    # A record holding a training row's decimal lands where the row was counted: the edges are those decimals.
    alcohol = profile.features["alcohol"]
    assert bin_of(alcohol, alcohol[0]) == 1 and bin_of(alcohol, alcohol[0] - 1e-9) == 0
    assert bin_of(alcohol, alcohol[-1]) == len(alcohol)


def test_a_profile_of_other_features_or_broken_edges_is_refused(modelled: tuple[Path, Path], tmp_path: Path) -> None:
    model, path = modelled
    features = Model(model).features
    document = json.loads(path.read_text())
    with pytest.raises(ProfileError, match="are not the model's"):
        Profile.load(path, [*features[:-1], "colour"])
    broken = {**document, "features": {**document["features"], "pH": {"edges": [3.0, 2.0], "shares": [0, 1, 0]}}}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ProfileError, match="pH: edges must be"):
        Profile.load(tmp_path / "broken.json", features)


def test_latency_buckets_are_log_scale_and_bounded() -> None:
    assert latency_bucket(0.05) == 0
    assert latency_bucket(0.1) == 1
    assert latency_bucket(0.1 * 2**0.5) == 2
    assert latency_bucket(1.0) == 7  # 0.1 ms * 2^(6.64/2)
    assert latency_bucket(10**9) == LATENCY_BUCKETS - 1
    bounds = [latency_bucket(0.1 * 2 ** (k / 4)) for k in range(80)]
    assert bounds == sorted(bounds)


def test_windows_count_every_message_once_and_say_what_was_rejected(
    modelled: tuple[Path, Path], samples: list[Any]
) -> None:
    model_path, profile_path = modelled
    model = Model(model_path)
    profile = Profile.load(profile_path, model.features)
    processor = MessageProcessor(model, Limits(), "1.0.3")
    recorder = Recorder(identity(), profile)
    missing = [{k: v for k, v in samples[0].items() if k != "pH"}]
    bad = [
        Message("local/topic", b"{not json"),
        Message("local/topic", json.dumps({"body": json.dumps(missing)}).encode()),
    ]
    windows: list[dict[str, Any]] = []
    for batch in (messages_of(samples, 3), bad, messages_of(samples, 2)):
        recorder.scored(batch, processor.process_batch(batch), batch[-1].arrived + 0.002)
        windows.append(recorder.cut(dropped_total=4 * len(windows), shadow_total=None))
    assert [w["seq"] for w in windows] == [0, 1, 2]
    assert [w["messages"] for w in windows] == [3, 2, 2]
    assert [w["records"] for w in windows] == [3 * len(samples), 0, 2 * len(samples)]
    assert [w["dropped"] for w in windows] == [0, 4, 4]  # the increase of the running count
    assert windows[1]["rejected"] == {"invalid_json": 1, "missing_feature": 1}
    assert windows[1]["missing"] == {"pH": 1}
    for window in windows:
        assert window["profile"] == profile.sha256
        assert len(window["features"]) == len(profile.features)  # in the profile's order
        assert all(sum(bins) == window["records"] for bins in window["features"])
        assert sum(window["prediction"]) == window["records"]
        assert sum(window["latency"]) == window["messages"]
        assert window["end"] >= window["start"]
    assert windows[1]["start"] == windows[0]["end"]  # windows tile time: none overlaps, none leaves a gap


def test_without_a_profile_windows_still_count_and_say_no_reference(samples: list[Any], seed: Path) -> None:
    model = Model(seed / "xgboost_wine_quality.json")
    recorder = Recorder(identity(), None)
    batch = messages_of(samples, 2)
    recorder.scored(batch, MessageProcessor(model, Limits()).process_batch(batch), batch[-1].arrived)
    window = recorder.cut(0, None)
    assert window["profile"] is None and "features" not in window
    assert window["messages"] == 2 and window["records"] == 2 * len(samples)


def test_a_challengers_agreement_is_the_increase_since_the_last_window() -> None:
    recorder = Recorder(identity(challenger="e" * 64), None)
    first = recorder.cut(0, ShadowCounts(10, 2.5, 1.0, 1, 0))
    second = recorder.cut(0, ShadowCounts(16, 4.0, 1.5, 1, 2))
    assert first["challenger"] == {
        "sha256": "e" * 64,
        "compared": 10,
        "abs_diff": 2.5,
        "sq_diff": 1.0,
        "failures": 1,
        "dropped": 0,
    }
    assert second["challenger"]["compared"] == 6 and second["challenger"]["abs_diff"] == 1.5
    assert second["challenger"]["failures"] == 0 and second["challenger"]["dropped"] == 2


def test_a_busy_window_of_the_wine_model_with_a_challenger_is_at_most_2_kb(modelled: tuple[Path, Path]) -> None:
    """The issue's bound, on a busy window: 1,000 messages a second for the default 300 s, three records each, spread
    over the bins as the training rows were, every latency bucket used, three reject reasons, two features missing
    somewhere, a challenger compared on every record."""
    model_path, profile_path = modelled
    profile = Profile.load(profile_path, Model(model_path).features)
    shares = json.loads(profile_path.read_text())
    recorder = Recorder(identity(challenger="e" * 64), profile)
    messages, records = 300_000, 900_000
    window = recorder.cut(1234, ShadowCounts(records, 123456.123456, 654321.654321, 12, 345))
    window.update(messages=messages, records=records, batches=messages // 3, unsent=1)
    window["features"] = [
        [round(share * records) + 1 for share in spec["shares"]] for spec in shares["features"].values()
    ]
    window["prediction"] = [round(share * records) + 1 for share in shares["prediction"]["shares"]]
    window["latency"] = [messages // LATENCY_BUCKETS] * LATENCY_BUCKETS
    window["rejected"] = {"invalid_json": 1234, "missing_feature": 567, "not_numeric": 89}
    window["missing"], window["nonfinite"] = {"pH": 567}, {"free sulfur dioxide": 89}
    size = len(encode(window))
    assert size <= 2048, size


class Cloud:
    """What an MQTT client of the account hears on the telemetry topics."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.windows: list[dict[str, Any]] = []
        self.topics: set[str] = set()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._heard
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(*address)
        self.client.loop_start()
        self.client.subscribe("edgeml/+/telemetry", qos=1)
        assert subscribed.wait(10)

    def _heard(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.topics.add(message.topic)
        self.windows.append(json.loads(message.payload))

    def messages(self) -> int:
        return sum(window["messages"] for window in self.windows)


def subscribed_with_a_tester(gg: CoreThread, model: Path, profile: str) -> Any:
    """The subscriber with windows of 20 messages (or 10 minutes), subscribed, and an IPC client that may publish to
    its input topic."""
    access = {"aws.greengrass.ipc.pubsub": {"t:1": {"operations": ["*"], "resources": ["local/topic"]}}}
    gg.component("Tester", configuration={"accessControl": access})
    deploy_subscriber(gg, model, {"telemetryWindowSeconds": 600, "telemetryWindowMessages": 20}, profile=profile)
    log = gg.core.root / "logs" / f"{NAME}.log"
    eventually(lambda: "subscribed to local/topic" in (log.read_text() if log.exists() else ""), 30)
    return gg.client("Tester")


def test_the_component_sends_its_windows_to_iot_core_and_the_last_when_it_stops(
    gg: CoreThread, mosquitto: tuple[str, int], modelled: tuple[Path, Path], samples: list[Any]
) -> None:
    """PublishToIoTCore on <prefix>/<thing>/telemetry, allowed by the recipe's own mqttproxy policy: the windows'
    counts add up to the messages sent, their sequence numbers run without a gap, and the window still open when the
    nucleus stops the component is sent on its way out."""
    bridge = MqttBridge(*mosquitto, "localgg-telemetry", gg.loop)
    bridge.connect()
    gg.core.services.iot_core = bridge
    cloud = Cloud(mosquitto)
    model, profile = modelled
    (model.parent / "profile.json").write_text(profile.read_text())
    try:
        tester = subscribed_with_a_tester(gg, model, "profile.json")
        body = json.dumps({"body": json.dumps(samples)}).encode()
        for _ in range(50):
            message = PublishMessage(binary_message=BinaryMessage(message=body))
            tester.publish_to_topic(topic="local/topic", publish_message=message)
        eventually(lambda: cloud.messages() >= 40, 30, what="two windows of 20 messages or more")
        gg.deploy(remove=(NAME,))
        eventually(lambda: cloud.messages() == 50, 30, what="the last window, sent as the component stopped")
        assert cloud.topics == {"edgeml/test-thing/telemetry"}
        assert [w["seq"] for w in cloud.windows] == list(range(len(cloud.windows)))
        assert {w["thing"] for w in cloud.windows} == {"test-thing"}
        assert sum(w["records"] for w in cloud.windows) == 50 * len(samples)
        assert {w["profile"] for w in cloud.windows} == {Profile.load(profile, Model(model).features).sha256}
        assert all(len(json.dumps(w, separators=(",", ":"))) <= 2048 for w in cloud.windows)
    finally:
        cloud.client.loop_stop()
        bridge.close()


def test_the_real_component_fed_the_wine_rows_is_not_flagged_by_make_monitor(
    gg: CoreThread, mosquitto: tuple[str, int], modelled: tuple[Path, Path], seed: Path, tmp_path: Path
) -> None:
    """The unmodified component on localgg, fed 600 wine rows drawn at random from the data set its profile was made
    from, sends windows that `make monitor`'s own code (over S3, as Firehose writes them, the profile where the
    model component's artifacts are) judges and does not flag: the same population gives a PSI near 0 on every
    feature. Its counts reach the report whole."""
    bridge = MqttBridge(*mosquitto, "localgg-wine", gg.loop)
    bridge.connect()
    gg.core.services.iot_core = bridge
    cloud = Cloud(mosquitto)
    model, profile = modelled
    table = wine.load_csv(seed / "wine_concat.csv")
    chosen = np.random.default_rng(11).choice(len(table.features), size=600, replace=False)
    rows = [dict(zip(wine.FEATURES, map(float, table.features[i]), strict=True)) for i in chosen]
    server, endpoint = moto_aws.start()
    try:
        tester = subscribed_with_a_tester(gg, model, str(profile))
        for start in range(0, len(rows), 10):
            body = json.dumps({"body": json.dumps(rows[start : start + 10])}).encode()
            tester.publish_to_topic(
                topic="local/topic", publish_message=PublishMessage(binary_message=BinaryMessage(message=body))
            )
        gg.deploy(remove=(NAME,))
        eventually(lambda: cloud.messages() == 60, 60, what="every window, the last sent as the component stopped")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="k",
                          aws_secret_access_key="s")  # fmt: skip
        outputs = stack_outputs("eu-west-1", "123456789012", "r/edgeml", "wine-bucket", "arn:aws:iot:x:1:thinggroup/g")
        s3.create_bucket(Bucket="wine-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        sha = hashlib.sha256(profile.read_bytes()).hexdigest()
        key = f"artifacts/{outputs.components.model}/{sha}/profile-{sha[:12]}.json"
        s3.put_object(Bucket="wine-bucket", Key=key, Body=profile.read_bytes())
        now = datetime.now(UTC)
        delivered = [{**w, "device": "test-thing", "received": int(now.timestamp() * 1000)} for w in cloud.windows]
        hour = now.strftime("year=%Y/month=%m/day=%d/hour=%H")
        lines = "".join(json.dumps(w) + "\n" for w in delivered).encode()
        s3.put_object(Bucket="wine-bucket", Key=f"telemetry/windows/{hour}/wine.gz", Body=gzip.compress(lines))
        record = monitor.monitor(s3, outputs, "1h", "", tmp_path / "monitor").record()
    finally:
        server.stop()
        cloud.client.loop_stop()
        bridge.close()
    assert {w["profile"] for w in cloud.windows} == {sha}
    assert record["group"]["records"] == 600 and record["drifting"] == []
    (device,) = record["devices"]
    assert device["judged"] and max(device["psi"].values()) < drift.MODERATE, device["psi"]
